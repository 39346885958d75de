//! e-Courier ⇄ gateway mapping (docs/carriers/ecourier.md "ecourier": Order body, Errors, Where
//! progress lives, Status mapping; field by field in `docs/carriers/ecourier.md`). Pure
//! functions, unit-tested here and against the reference's own examples
//! (`contract/fixtures/ecourier/`).

use chrono::{DateTime, FixedOffset, NaiveDateTime, TimeZone as _, Utc};

use super::wire::{self, JobStopOut, OrderOut, StopOut};
use crate::carriers::{CarrierError, CarrierEvent, Location, Quote, TrackingSnapshot};
use crate::domain::{CurrencyCode, DecimalAmount, Money, ShipmentPlan, Status, Stop, StopType, Weight};

/// Connection settings this adapter reads.
#[derive(Debug, Clone)]
pub struct Settings {
    pub customer_code: String,
    /// Offset of the e-Courier site's local time, used to read its zone-less times.
    pub utc_offset: FixedOffset,
    /// Unit the site expects piece weights in.
    pub weight_in_kg: bool,
    pub default_service: Option<String>,
    /// `Auth` sent on every order (the reference's examples carry one; some sites
    /// require an authorization code per account).
    pub auth: Option<String>,
    /// Countries as ISO 3166-1 alpha-3 (`USA`, as in the reference's examples), else
    /// alpha-2 as the gateway holds them.
    pub country_alpha3: bool,
    /// `JobStopStatus` / `PieceActionStatus` values that mean "done", normalized with
    /// [`norm`], on top of [`DONE_WORDS`].
    pub completed_statuses: Vec<String>,
}

impl Settings {
    /// Settings with only the required customer code (tests, defaults).
    pub fn new(customer_code: &str) -> Settings {
        Settings {
            customer_code: customer_code.to_owned(),
            utc_offset: FixedOffset::east_opt(0).unwrap_or_else(|| unreachable!("zero offset")),
            weight_in_kg: false,
            default_service: None,
            auth: None,
            country_alpha3: true,
            completed_statuses: Vec::new(),
        }
    }
}

// ---------- requests ----------

/// e-Courier's date format, reference example `11/13/2019 6:00:00 AM`.
pub fn format_datetime(t: &DateTime<FixedOffset>) -> String {
    t.format("%-m/%-d/%Y %-I:%M:%S %p").to_string()
}

/// `ScheduledDateTimeTZ` (reference example "EST"). e-Courier documents no list, so (ours)
/// the US zone names for the offsets they are unambiguous for, else `UTC±hh:mm`.
pub fn tz_label(offset: &FixedOffset) -> String {
    match offset.local_minus_utc() / 60 {
        0 => "UTC".into(),
        -300 => "EST".into(),
        -360 => "CST".into(),
        -420 => "MST".into(),
        -480 => "PST".into(),
        -240 => "EDT".into(),
        m => format!("UTC{}{:02}:{:02}", if m < 0 { '-' } else { '+' }, m.abs() / 60, m.abs() % 60),
    }
}

fn fmt_num(v: f64) -> String {
    let s = format!("{v:.3}");
    s.trim_end_matches('0').trim_end_matches('.').to_owned()
}

fn weight_str(w: &Weight, in_kg: bool) -> String {
    fmt_num(if in_kg { w.in_kg() } else { w.in_lb() })
}

/// ISO 3166-1 alpha-2 → alpha-3, six bytes per country ("USUSA "), sorted by alpha-2.
/// Data: Debian iso-codes 4.15.0, `iso_3166-1.json` (249 countries).
const ALPHA3: &str = concat!(
    "ADAND AEARE AFAFG AGATG AIAIA ALALB AMARM AOAGO AQATA ARARG ASASM ATAUT AUAUS AWABW AXALA AZAZE ",
    "BABIH BBBRB BDBGD BEBEL BFBFA BGBGR BHBHR BIBDI BJBEN BLBLM BMBMU BNBRN BOBOL BQBES BRBRA BSBHS ",
    "BTBTN BVBVT BWBWA BYBLR BZBLZ CACAN CCCCK CDCOD CFCAF CGCOG CHCHE CICIV CKCOK CLCHL CMCMR CNCHN ",
    "COCOL CRCRI CUCUB CVCPV CWCUW CXCXR CYCYP CZCZE DEDEU DJDJI DKDNK DMDMA DODOM DZDZA ECECU EEEST ",
    "EGEGY EHESH ERERI ESESP ETETH FIFIN FJFJI FKFLK FMFSM FOFRO FRFRA GAGAB GBGBR GDGRD GEGEO GFGUF ",
    "GGGGY GHGHA GIGIB GLGRL GMGMB GNGIN GPGLP GQGNQ GRGRC GSSGS GTGTM GUGUM GWGNB GYGUY HKHKG HMHMD ",
    "HNHND HRHRV HTHTI HUHUN IDIDN IEIRL ILISR IMIMN ININD IOIOT IQIRQ IRIRN ISISL ITITA JEJEY JMJAM ",
    "JOJOR JPJPN KEKEN KGKGZ KHKHM KIKIR KMCOM KNKNA KPPRK KRKOR KWKWT KYCYM KZKAZ LALAO LBLBN LCLCA ",
    "LILIE LKLKA LRLBR LSLSO LTLTU LULUX LVLVA LYLBY MAMAR MCMCO MDMDA MEMNE MFMAF MGMDG MHMHL MKMKD ",
    "MLMLI MMMMR MNMNG MOMAC MPMNP MQMTQ MRMRT MSMSR MTMLT MUMUS MVMDV MWMWI MXMEX MYMYS MZMOZ NANAM ",
    "NCNCL NENER NFNFK NGNGA NINIC NLNLD NONOR NPNPL NRNRU NUNIU NZNZL OMOMN PAPAN PEPER PFPYF PGPNG ",
    "PHPHL PKPAK PLPOL PMSPM PNPCN PRPRI PSPSE PTPRT PWPLW PYPRY QAQAT REREU ROROU RSSRB RURUS RWRWA ",
    "SASAU SBSLB SCSYC SDSDN SESWE SGSGP SHSHN SISVN SJSJM SKSVK SLSLE SMSMR SNSEN SOSOM SRSUR SSSSD ",
    "STSTP SVSLV SXSXM SYSYR SZSWZ TCTCA TDTCD TFATF TGTGO THTHA TJTJK TKTKL TLTLS TMTKM TNTUN TOTON ",
    "TRTUR TTTTO TVTUV TWTWN TZTZA UAUKR UGUGA UMUMI USUSA UYURY UZUZB VAVAT VCVCT VEVEN VGVGB VIVIR ",
    "VNVNM VUVUT WFWLF WSWSM YEYEM YTMYT ZAZAF ZMZMB ZWZWE ",
);

/// The reference's examples write `"Country": "USA"`; we hold ISO alpha-2. An unknown
/// code (the gateway accepts any two letters) is sent as it is.
pub fn country_alpha3(alpha2: &str) -> Option<&'static str> {
    let n = ALPHA3.len() / 6;
    let (mut lo, mut hi) = (0, n);
    while lo < hi {
        let mid = (lo + hi) / 2;
        let entry = &ALPHA3[mid * 6..mid * 6 + 5];
        match entry[..2].cmp(alpha2) {
            std::cmp::Ordering::Equal => return Some(&entry[2..]),
            std::cmp::Ordering::Less => lo = mid + 1,
            std::cmp::Ordering::Greater => hi = mid,
        }
    }
    None
}

fn country(s: &Stop, settings: &Settings) -> String {
    let a2 = s.address.country.as_str();
    match settings.country_alpha3.then(|| country_alpha3(a2)).flatten() {
        Some(a3) => a3.to_owned(),
        None => a2.to_owned(),
    }
}

/// `Name` is "Customer name on this stop" (reference, Stop); `See` the person to see
/// there. With both a company and a person, the company is the name and the person
/// whom to see; with one of them, it is the name.
fn name_and_see(s: &Stop) -> (Option<String>, Option<String>) {
    let nonempty = |v: &Option<String>| v.clone().filter(|x| !x.trim().is_empty());
    match (nonempty(&s.company), nonempty(&s.name)) {
        (Some(company), Some(person)) if company != person => (Some(company), Some(person)),
        (company, person) => (company.or(person), None),
    }
}

/// Build the SaveOrder/QuoteOrder body from our plan: the whole order, every field we
/// set. Update and cancel send this again (cancel with `OrderStatus: "X"`).
pub fn order_from_plan(plan: &ShipmentPlan, order_number: Option<&str>, settings: &Settings) -> wire::Order {
    let pieces: Vec<wire::Piece> = plan
        .parcels
        .iter()
        .enumerate()
        .map(|(i, p)| wire::Piece {
            sequence: (i + 1).to_string(),
            reference: p.reference.clone(),
            pieces: p.quantity.to_string(),
            weight: p.weight.as_ref().map(|w| weight_str(w, settings.weight_in_kg)),
            description: p.description.clone(),
        })
        .collect();
    let stops = plan
        .stops
        .iter()
        .map(|s| {
            let mut links = Vec::new();
            for (i, p) in plan.parcels.iter().enumerate() {
                if s.stop_type.picks_up() && plan.pickup_stop_of(p) == Some(s.sequence) {
                    links.push(wire::OrderStopPiece { piece_action: "P".into(), sequence: (i + 1).to_string() });
                }
                if s.stop_type.delivers() && plan.delivery_stop_of(p) == Some(s.sequence) {
                    links.push(wire::OrderStopPiece { piece_action: "D".into(), sequence: (i + 1).to_string() });
                }
            }
            let address = match &s.address.line2 {
                Some(l2) if !l2.is_empty() => format!("{}, {}", s.address.line1, l2),
                _ => s.address.line1.clone(),
            };
            let when = s.scheduled_at.or(s.window_start);
            let (name, see) = name_and_see(s);
            wire::Stop {
                sequence: s.sequence.to_string(),
                stop_type: match s.stop_type {
                    StopType::Pickup => "P",
                    StopType::Delivery => "D",
                    StopType::Both => "B",
                }
                .into(),
                scheduled_date_time: when.as_ref().map(format_datetime),
                scheduled_date_time_tz: when.as_ref().map(|t| tz_label(t.offset())),
                early_date_time: s.window_start.as_ref().map(format_datetime),
                late_date_time: s.window_end.as_ref().map(format_datetime),
                name,
                see,
                address,
                city: s.address.city.clone(),
                state: s.address.state.clone(),
                zip: s.address.postal_code.clone(),
                country: country(s, settings),
                phone: s.phone.clone(),
                note: s.notes.clone(),
                order_stop_pieces: (!links.is_empty()).then_some(wire::OrderStopPieces { order_stop_piece: links }),
            }
        })
        .collect();
    wire::Order {
        customer_code: settings.customer_code.clone(),
        order_number: order_number.map(str::to_owned),
        order_status: None,
        service: plan.service.clone().or_else(|| settings.default_service.clone()),
        auth: settings.auth.clone(),
        notes: plan.notes.clone(),
        description: plan.parcels.iter().find_map(|p| p.description.clone()),
        other_reference: plan.reference.clone(),
        declared_value: plan.declared_value.as_ref().map(|m| m.amount.as_str().to_owned()),
        cod_amount: plan.cod_amount.as_ref().map(|m| m.amount.as_str().to_owned()),
        pieces: (!pieces.is_empty()).then_some(wire::Pieces { piece: pieces }),
        stops: Some(wire::Stops { stop: stops }),
    }
}

// ---------- answers ----------

/// Classify an answer by HTTP status and e-Courier status code (reference "Response
/// Status Codes"; docs/carriers/ecourier.md table). `Ok` only for HTTP 200 with `status:"0"`.
/// `TokenRefused` is kept apart so the client can log in again once.
#[derive(Debug)]
pub enum Outcome {
    Ok,
    TokenRefused(String),
    Failed(CarrierError),
}

pub fn classify(http_status: u16, answer: Option<&wire::StatusAnswer>, not_found_means_absent: bool) -> Outcome {
    let code = answer.and_then(|a| a.status.as_deref()).unwrap_or("");
    let text = answer.and_then(|a| a.statusdescription.clone()).unwrap_or_default();
    let msg = |fallback: &str| if text.is_empty() { fallback.to_owned() } else { text.clone() };
    if http_status == 409 {
        return Outcome::Failed(CarrierError::Conflict { message: msg("Order Unable to Modify") });
    }
    match (http_status, code) {
        (200, "0") => Outcome::Ok,
        // e-Courier itself answers errors with HTTP 500 (reference); 502-504 come from a
        // proxy or load balancer in front of it, whatever their body says.
        (502..=504, _) => Outcome::Failed(CarrierError::Transient {
            message: format!("HTTP {http_status} from e-Courier's front end"),
            retry_after: None,
        }),
        (_, "-1") => Outcome::Failed(CarrierError::Transient {
            message: msg("An undefined error has occurred"),
            retry_after: None,
        }),
        (_, "-2") => Outcome::Failed(CarrierError::Protocol {
            message: format!("e-Courier could not parse our request: {}", msg("Unable to parse JSON")),
        }),
        (_, "-3") => Outcome::Failed(CarrierError::Transient {
            message: msg("Unable to Connect to Database"),
            retry_after: None,
        }),
        (_, "-4") if not_found_means_absent && text.to_ascii_lowercase().contains("not found") => {
            Outcome::Failed(CarrierError::NotFound { message: msg("Order Not Found") })
        }
        (_, "-4") => Outcome::Failed(CarrierError::Rejected { message: msg("action not performed") }),
        (_, "-5") => Outcome::TokenRefused(msg("No UserGUID Received")),
        (_, "-6") => Outcome::Failed(CarrierError::Misconfigured {
            message: msg("No config file found for this UserGUID/customer"),
        }),
        (s, _) if s >= 500 => {
            Outcome::Failed(CarrierError::Transient { message: format!("HTTP {s} from e-Courier"), retry_after: None })
        }
        (404, _) => Outcome::Failed(CarrierError::Misconfigured {
            message: "e-Courier endpoint not found (HTTP 404): check the connection's base_url".into(),
        }),
        (s, c) => {
            Outcome::Failed(CarrierError::Protocol { message: format!("unexpected answer: HTTP {s}, status {c:?}") })
        }
    }
}

/// Zone-less e-Courier times in the formats the reference shows: `9/3/2020 2:43:00 AM`
/// (GetJsonOrder), `12/05/2020 09:00` and the two-digit year of `12/05/20 11:00`
/// (QuoteOrder), plus ISO as a courtesy.
pub fn parse_datetime(s: &str, offset: &FixedOffset) -> Option<DateTime<Utc>> {
    const FORMATS: [&str; 6] = [
        "%m/%d/%Y %I:%M:%S %p",
        "%m/%d/%Y %I:%M %p",
        "%m/%d/%Y %H:%M:%S",
        "%m/%d/%Y %H:%M",
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%d %H:%M:%S",
    ];
    // chrono's %Y happily reads "20" as the year 20, so a two-digit year picks the %y formats.
    const SHORT_YEAR: [&str; 4] = ["%m/%d/%y %I:%M:%S %p", "%m/%d/%y %I:%M %p", "%m/%d/%y %H:%M:%S", "%m/%d/%y %H:%M"];
    let s = s.trim();
    let two_digit_year =
        s.split(' ').next().and_then(|d| d.rsplit('/').next()).is_some_and(|y| y.len() == 2 && s.contains('/'));
    let formats: &[&str] = if two_digit_year { &SHORT_YEAR } else { &FORMATS };
    formats
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(s, f).ok())
        .and_then(|n| offset.from_local_datetime(&n).single())
        .map(|t| t.with_timezone(&Utc))
}

/// `"$40.00"` → 40.00 USD (reference, QuoteOrder example). Other currency signs are not
/// documented; they are kept out rather than guessed.
pub fn parse_money(s: &str) -> Option<Money> {
    let amount = s.trim().strip_prefix('$')?.replace(',', "");
    Some(Money {
        amount: DecimalAmount::try_from(amount).ok()?,
        currency: CurrencyCode::try_from("USD".to_owned()).ok()?,
    })
}

pub fn quote_from(order: &OrderOut, offset: &FixedOffset) -> Quote {
    Quote {
        amount: order.amount_charged.as_deref().and_then(parse_money),
        service: order.service.clone(),
        ready_at: order.ready_date_time.as_deref().and_then(|s| parse_datetime(s, offset)),
        due_at: order.due_date_time.as_deref().and_then(|s| parse_datetime(s, offset)),
        ready_at_raw: order.ready_date_time.clone(),
        due_at_raw: order.due_date_time.clone(),
    }
}

/// `JobStopStatus` / `PieceActionStatus` words that mean the stop or the piece action
/// is done. The reference lists both fields but no values (ours: unambiguous words only;
/// "Clear" is the reference's own word, OrderNotifyID 11 "CMS JobStop Clear"). A site's
/// own codes are added with the connection setting `completed_statuses`.
pub const DONE_WORDS: [&str; 9] =
    ["complete", "completed", "done", "finished", "clear", "cleared", "picked up", "delivered", "departed"];
/// Words that mean the driver is at the stop (ours, as above).
const ARRIVED_WORDS: [&str; 4] = ["arrived", "on site", "onsite", "at stop"];

/// Case, `_`, `-` and repeated spaces do not matter in a status word.
pub fn norm(s: &str) -> String {
    s.to_ascii_lowercase().replace(['_', '-'], " ").split_whitespace().collect::<Vec<_>>().join(" ")
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Word {
    Done,
    Arrived,
    Other,
}

fn word(s: Option<&str>, settings: &Settings) -> Word {
    let Some(w) = s.map(norm) else { return Word::Other };
    if DONE_WORDS.contains(&w.as_str()) || settings.completed_statuses.contains(&w) {
        Word::Done
    } else if ARRIVED_WORDS.contains(&w.as_str()) {
        Word::Arrived
    } else {
        Word::Other
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct Role {
    picks_up: bool,
    delivers: bool,
}

/// `StopType` P (pickup), D (destination), B (both) (reference, Stop and JobStop).
fn role(code: Option<&str>) -> Option<Role> {
    match code?.trim().to_ascii_uppercase().as_str() {
        "P" => Some(Role { picks_up: true, delivers: false }),
        "D" => Some(Role { picks_up: false, delivers: true }),
        "B" => Some(Role { picks_up: true, delivers: true }),
        _ => None,
    }
}

fn same(a: &Option<String>, b: &Option<String>) -> bool {
    matches!((a, b), (Some(x), Some(y)) if norm(x) == norm(y))
}

/// Equal where both sides say something.
fn agrees(a: &Option<String>, b: &Option<String>) -> bool {
    a.is_none() || b.is_none() || same(a, b)
}

/// The ordered stop (`Stops.Stop`) a JobStop works, as far as the data tells: the same
/// `StopID`, else the same `Sequence`, else the same address; with a single Job (no
/// transfer between drivers) the only ordered stop of its `StopType` too. With several
/// Jobs a JobStop may be a transfer point that was never ordered, so it must match
/// positively.
fn ordered_stop_of(js: &JobStopOut, stops: &[StopOut], single_job: bool) -> Option<usize> {
    let type_fits = |s: &StopOut| agrees(&js.stop_type, &s.stop_type);
    if js.stop_id.is_some()
        && let Some(i) = stops.iter().position(|s| same(&s.stop_id, &js.stop_id))
    {
        return Some(i);
    }
    if js.sequence.is_some()
        && let Some(i) = stops.iter().position(|s| same(&s.sequence, &js.sequence) && type_fits(s))
    {
        return Some(i);
    }
    if js.address.is_some() {
        let hits: Vec<usize> = (0..stops.len())
            .filter(|&i| {
                let s = &stops[i];
                same(&s.address, &js.address) && agrees(&s.zip, &js.zip) && agrees(&s.city, &js.city) && type_fits(s)
            })
            .collect();
        if let [i] = hits[..] {
            return Some(i);
        }
    }
    if single_job && js.stop_type.is_some() {
        let hits: Vec<usize> = (0..stops.len()).filter(|&i| same(&stops[i].stop_type, &js.stop_type)).collect();
        if let [i] = hits[..] {
            return Some(i);
        }
    }
    None
}

/// What one JobStop shows.
#[derive(Debug, Default)]
struct StopFacts {
    ordered: Option<usize>,
    role: Role,
    /// Anything happened here: arrival, departure, POD, a done status or piece action.
    visited: bool,
    arrived: bool,
    /// The stop's pickup is done: departed, POD, status done, or a pickup piece done.
    picked_up: bool,
    /// The stop's delivery is done: POD, status done, or every delivery piece done.
    delivered: bool,
    signed: bool,
}

/// A progress time that says something happened: present, and not the empty-date
/// placeholder (.NET's `1/1/0001 12:00:00 AM`, SQL's `1/1/1900`) an XML serializer may
/// write for "not yet". A time in a format we cannot read still counts: it was set.
fn happened(t: &Option<String>) -> bool {
    use chrono::Datelike as _;
    let utc = FixedOffset::east_opt(0).unwrap_or_else(|| unreachable!("zero offset"));
    match t.as_deref() {
        None => false,
        Some(s) => parse_datetime(s, &utc).is_none_or(|d| d.year() >= 1990) && !s.trim_start().starts_with("1/1/0001"),
    }
}

fn facts(js: &JobStopOut, stops: &[StopOut], single_job: bool, settings: &Settings) -> StopFacts {
    let ordered = ordered_stop_of(js, stops, single_job);
    let from_pieces = {
        let acts =
            |a: &str| js.pieces.iter().any(|p| p.piece_action.as_deref().is_some_and(|x| x.eq_ignore_ascii_case(a)));
        (!js.pieces.is_empty()).then(|| Role { picks_up: acts("P"), delivers: acts("D") })
    };
    let role = role(js.stop_type.as_deref())
        .or_else(|| ordered.and_then(|i| role(stops[i].stop_type.as_deref())))
        .or(from_pieces)
        .unwrap_or_default();
    let status = word(js.status.as_deref(), settings);
    let piece_done = |action: &str| {
        js.pieces
            .iter()
            .filter(|p| p.piece_action.as_deref().is_some_and(|a| a.eq_ignore_ascii_case(action)))
            .map(|p| word(p.piece_action_status.as_deref(), settings) == Word::Done)
            .collect::<Vec<bool>>()
    };
    let (pickups, deliveries) = (piece_done("P"), piece_done("D"));
    let pod = js.pod_name.is_some() || happened(&js.pod_date_time);
    let arrived = happened(&js.arrive_date_time)
        || status == Word::Arrived
        || js.pieces.iter().any(|p| happened(&p.arrive_date_time));
    let departed = happened(&js.depart_date_time);
    let picked_up = role.picks_up && (departed || pod || status == Word::Done) || pickups.iter().any(|d| *d);
    let delivered =
        role.delivers && (pod || status == Word::Done || (!deliveries.is_empty() && deliveries.iter().all(|d| *d)));
    StopFacts {
        ordered,
        role,
        visited: arrived || departed || pod || status == Word::Done || pickups.iter().chain(&deliveries).any(|d| *d),
        arrived,
        picked_up,
        delivered,
        signed: js.pod_name.is_some(),
    }
}

/// e-Courier event types we know (the reference names milestones "Pickup, POD, Status
/// change"; the rest is common courier wording). An unknown type is kept raw, no status.
fn event_status(event_type: &str) -> Option<(Status, Option<&'static str>)> {
    match norm(event_type).as_str() {
        "created" | "new" | "order created" => Some((Status::InfoReceived, None)),
        "assigned" | "dispatched" | "driver assigned" => Some((Status::InfoReceived, Some("InfoReceived_001"))),
        "picked up" | "pickup" | "departed" => Some((Status::InTransit, Some("InTransit_002"))),
        "arrived" => Some((Status::InTransit, None)),
        "delivered" | "pod" => Some((Status::Delivered, Some("Delivered_001"))),
        "cancelled" | "canceled" | "deleted" => Some((Status::Exception, Some("Exception_020"))),
        _ => None,
    }
}

/// Normalized status of an order (docs/carriers/ecourier.md "Where progress lives", "Status
/// mapping"), from every piece of evidence the reference describes: `OrderStatus`, the
/// JobStops (arrive/depart times, `JobStopStatus`, POD) matched to the ordered stops,
/// their pieces' `PieceActionStatus`, the order's POD and its OrderEvents. The most
/// advanced evidence wins; across refreshes the status still only moves forward
/// (`apply_snapshot`).
///
/// `None`: no mapping (template `T`; undocumented `I`/`P` or an unknown code with no
/// progress evidence): the raw code is kept and the status does not move.
pub fn order_status(order: &OrderOut, settings: &Settings) -> Option<(Status, Option<String>)> {
    let code = order.order_status.as_deref().unwrap_or("").trim().to_ascii_uppercase();
    match code.as_str() {
        "X" => return Some((Status::Exception, Some("Exception_020".into()))),
        "T" => return None,
        _ => {}
    }
    let single_job = order.jobs.len() <= 1;
    let stops: Vec<StopFacts> =
        order.jobs.iter().flat_map(|j| &j.stops).map(|js| facts(js, &order.stops, single_job, settings)).collect();
    // The destinations: the ordered stops that deliver; without them (an answer that
    // leaves `Stops` out), every JobStop that delivers.
    let destinations: Vec<usize> = (0..order.stops.len())
        .filter(|&i| role(order.stops[i].stop_type.as_deref()).is_some_and(|r| r.delivers))
        .collect();
    let is_destination = |f: &StopFacts| match f.ordered {
        _ if destinations.is_empty() => f.role.delivers,
        Some(i) => destinations.contains(&i),
        None => false,
    };
    let finals: Vec<&StopFacts> = stops.iter().filter(|f| is_destination(f)).collect();
    let all_destinations_delivered = if destinations.is_empty() {
        !finals.is_empty() && finals.iter().all(|f| f.delivered)
    } else {
        destinations.iter().all(|&d| stops.iter().any(|f| f.ordered == Some(d) && f.delivered))
    };
    let event_says = |s: Status| {
        order
            .events
            .iter()
            .filter_map(|e| e.event_type.as_deref())
            .any(|t| event_status(t).is_some_and(|(x, _)| x == s))
    };
    let order_pod = order.pod_name.is_some() || happened(&order.pod_date_time) || order.pod_signed;
    let delivered = order_pod || all_destinations_delivered || event_says(Status::Delivered);
    if delivered {
        let signed = order.pod_name.is_some() || order.pod_signed || finals.iter().any(|f| f.delivered && f.signed);
        return Some((Status::Delivered, Some(if signed { "Delivered_003" } else { "Delivered_001" }.into())));
    }
    if finals.iter().any(|f| f.arrived) {
        return Some((Status::OutForDelivery, None));
    }
    // Goods at a stop that delivers (a destination or a transfer point) were picked up.
    let picked_up = stops
        .iter()
        .any(|f| f.picked_up || (f.role.picks_up && f.arrived) || (f.role.delivers && f.visited) || f.delivered)
        || event_says(Status::InTransit);
    if picked_up {
        return Some((Status::InTransit, Some("InTransit_002".into())));
    }
    match code.as_str() {
        "N" => Some((Status::InfoReceived, None)),
        "A" => Some((Status::InfoReceived, Some("InfoReceived_001".into()))),
        _ => None,
    }
}

pub fn snapshot_from(order: &OrderOut, settings: &Settings) -> TrackingSnapshot {
    let offset = &settings.utc_offset;
    let delivery_stop = order.stops.iter().rev().find(|s| role(s.stop_type.as_deref()).is_some_and(|r| r.delivers));
    let events = order
        .events
        .iter()
        .filter_map(|e| {
            let kind = e.event_type.clone()?;
            let occurred_at = e.event_date_time.as_deref().and_then(|s| parse_datetime(s, offset));
            let Some(occurred_at) = occurred_at else {
                tracing::warn!(event_type = %kind, at = ?e.event_date_time, "e-Courier event without a readable time");
                return None;
            };
            let (status, subtag) = match event_status(&kind) {
                Some((s, t)) => (Some(s), t.map(str::to_owned)),
                None => (None, None),
            };
            let location = (status == Some(Status::Delivered)).then_some(delivery_stop).flatten().map(|s| Location {
                code: None,
                city: s.city.clone(),
                state: s.state.clone(),
                country: s.country.clone(),
            });
            let dedup_key = match &e.order_event_id {
                Some(id) => format!("ecourier:{id}"),
                None => format!("ecourier:{}|{}", kind, e.event_date_time.as_deref().unwrap_or("")),
            };
            Some(CarrierEvent {
                occurred_at,
                status,
                subtag,
                message: e.note.clone().or_else(|| e.event_note.clone()).or_else(|| Some(kind.clone())),
                location,
                raw_code: Some(kind),
                raw_text: e.event_note.clone().or_else(|| e.note.clone()),
                // "UserName" (reference, OrderEvent): who did it at the carrier.
                actor: e.user_name.clone(),
                dedup_key,
            })
        })
        .collect();
    let status = order_status(order, settings);
    let proof = super::pod::proof_from(order, offset, status.as_ref().map(|s| s.0));
    TrackingSnapshot {
        status,
        carrier_status: order.order_status.clone(),
        events,
        estimated_delivery: None,
        documents: Vec::new(),
        proof,
    }
}

#[cfg(test)]
#[path = "mapping_tests.rs"]
mod tests;
