//! Lifecycle: where progress lives.

use super::*;

// ---- Lifecycle: where progress lives

#[tokio::test]
async fn progress_lives_on_jobs_jobstops_and_the_order_pod() {
    let h = start(config()).await;
    let guid = REFERENCE_GUID;
    assert_eq!(h.call("SaveOrder", Some(guid), &order("L-1")).await.status, 200);
    let ordered_stops = h.get_order(guid, "L-1").await["Order"]["Stops"].clone();

    assert_eq!(h.sim.advance("L-1"), Ok(OrderStage::Assigned));
    let o = h.get_order(guid, "L-1").await["Order"].clone();
    assert_eq!(o["@OrderStatus"], "A");
    let job = &o["Jobs"]["Job"];
    assert!(job.is_object(), "one Job: an object");
    assert!(job["Drivers"]["Driver"]["@DriverCode"].as_str().is_some_and(|c| !c.is_empty()));
    let job_stops = job["JobStops"]["JobStop"].as_array().expect("two JobStops").clone();
    assert!(job_stops.iter().all(|js| js.get("@ArriveDateTime").is_none() && js.get("@JobStopStatus").is_none()));
    assert_eq!(job_stops[0]["@StopID"], ordered_stops["Stop"][0]["@StopID"]);
    assert_eq!(job_stops[0]["@Address"], "2251 Orange Blossom Trail");

    assert_eq!(h.sim.advance("L-1"), Ok(OrderStage::PickedUp));
    let o = h.get_order(guid, "L-1").await["Order"].clone();
    assert_eq!(o["@OrderStatus"], "A", "no documented status for picked up");
    let pickup = &o["Jobs"]["Job"]["JobStops"]["JobStop"][0];
    for field in ["@ArriveDateTime", "@DepartDateTime"] {
        assert!(is_ec_datetime(pickup[field].as_str().unwrap_or("")), "{field}: {pickup}");
    }
    assert_eq!(pickup["@JobStopStatus"], "C");
    assert_eq!(pickup["JobStopPieces"]["JobStopPiece"]["@PieceActionStatus"], "C");
    assert_eq!(pickup["JobStopPieces"]["JobStopPiece"]["@PieceAction"], "P");
    let delivery = &o["Jobs"]["Job"]["JobStops"]["JobStop"][1];
    assert!(delivery.get("@ArriveDateTime").is_none() && delivery.get("@PodName").is_none());
    assert_eq!(o["Stops"], ordered_stops, "Stops.Stop holds only what was ordered");
    assert!(o.get("@PodName").is_none());
    let events = many(&o["OrderEvents"]["OrderEvent"]);
    assert_eq!(events.last().unwrap()["@EventType"], "Pickup");
    for event in &events {
        for field in ["@OrderEventID", "@EventType", "@EventDateTime", "@UserName", "@Note", "@EventSource"] {
            assert!(event.get(field).is_some(), "{field} in {event}");
        }
    }

    assert_eq!(h.sim.advance("L-1"), Ok(OrderStage::Delivered));
    let o = h.get_order(guid, "L-1").await["Order"].clone();
    assert_all_strings(&o, "Order");
    let delivery = &o["Jobs"]["Job"]["JobStops"]["JobStop"][1];
    assert_eq!(delivery["@PodName"], "Bryan Moore");
    assert!(is_ec_datetime(delivery["@PodDateTime"].as_str().unwrap()));
    assert_eq!(delivery["JobStopPieces"]["JobStopPiece"]["@PieceActionStatus"], "C");
    assert_eq!(o["@PodName"], "Bryan Moore");
    assert_eq!(o["@PodDateTime"], delivery["@PodDateTime"]);
    check_png(o["@PodSign"].as_str().expect("PodSign"));
    assert_eq!(many(&o["OrderEvents"]["OrderEvent"]).last().unwrap()["@EventType"], "POD");
    assert_eq!(o["Stops"], ordered_stops);
    assert!(h.sim.advance("L-1").is_err(), "delivered is the end");

    // A stale replica: one step back, the events stay.
    assert_eq!(h.sim.rewind("L-1"), Ok(OrderStage::PickedUp));
    let o = h.get_order(guid, "L-1").await["Order"].clone();
    assert!(o.get("@PodName").is_none() && o.get("@PodSign").is_none());
    assert!(o["Jobs"]["Job"]["JobStops"]["JobStop"][1].get("@PodName").is_none());
    assert_eq!(many(&o["OrderEvents"]["OrderEvent"]).last().unwrap()["@EventType"], "POD");
    assert_eq!(h.sim.rewind("L-1"), Ok(OrderStage::Assigned));
    assert_eq!(h.sim.rewind("L-1"), Ok(OrderStage::New));
    let o = h.get_order(guid, "L-1").await["Order"].clone();
    assert_eq!(o["@OrderStatus"], "N");
    assert!(o.get("Jobs").is_none());
    h.sim.set_order_status("L-1", "P").unwrap();
    assert_eq!(h.get_order(guid, "L-1").await["Order"]["@OrderStatus"], "P");
}

/// A third-party zlib and CRC-32 read the signature: PNG magic, IHDR, IDAT, IEND, and
/// the pixel data is as long as IHDR says.
fn check_png(b64: &str) {
    use base64::Engine;
    use std::io::Read;
    let png = base64::engine::general_purpose::STANDARD.decode(b64).expect("base64");
    assert!(png.len() < 4096, "a small picture");
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    let (mut at, mut chunks, mut idat) = (8, Vec::new(), Vec::new());
    while at < png.len() {
        let len = u32::from_be_bytes(png[at..at + 4].try_into().unwrap()) as usize;
        let kind = &png[at + 4..at + 8];
        let data = &png[at + 8..at + 8 + len];
        let crc = u32::from_be_bytes(png[at + 8 + len..at + 12 + len].try_into().unwrap());
        assert_eq!(crc, crc32fast::hash(&png[at + 4..at + 8 + len]), "CRC of {}", String::from_utf8_lossy(kind));
        if kind == b"IDAT" {
            idat.extend_from_slice(data);
        }
        chunks.push((kind.to_vec(), data.to_vec()));
        at += 12 + len;
    }
    let kinds: Vec<&[u8]> = chunks.iter().map(|(k, _)| k.as_slice()).collect();
    assert_eq!(kinds, [&b"IHDR"[..], b"IDAT", b"IEND"]);
    let ihdr = &chunks[0].1;
    let width = u32::from_be_bytes(ihdr[0..4].try_into().unwrap()) as usize;
    let height = u32::from_be_bytes(ihdr[4..8].try_into().unwrap()) as usize;
    assert_eq!((ihdr[8], ihdr[9]), (1, 0), "1-bit grayscale");
    let mut raw = Vec::new();
    flate2::read::ZlibDecoder::new(idat.as_slice()).read_to_end(&mut raw).expect("zlib");
    assert_eq!(raw.len(), height * (1 + width.div_ceil(8)));
    assert!(raw.iter().any(|&b| b != 0 && b != 0xFF), "some ink");
}

#[tokio::test]
async fn the_clock_advances_open_orders() {
    let h = start(config()).await;
    for n in ["K-1", "K-2"] {
        assert_eq!(h.call("SaveOrder", Some(REFERENCE_GUID), &order(n)).await.status, 200);
    }
    let mut template = order("K-3");
    template["Order"]["OrderStatus"] = json!("T");
    assert_eq!(h.call("SaveOrder", Some(REFERENCE_GUID), &template).await.status, 200);
    h.sim.start_clock(Duration::from_millis(20));
    let deadline = Instant::now() + Duration::from_secs(10);
    while h.sim.order("K-2").unwrap()["Order"].get("@PodName").is_none() {
        assert!(Instant::now() < deadline, "the clock did not deliver");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    h.sim.stop_clock();
    assert!(h.sim.order("K-1").unwrap()["Order"].get("@PodSign").is_some());
    assert_eq!(h.sim.order("K-3").unwrap()["Order"]["@OrderStatus"], "T", "templates do not move");
    assert!(h.sim.order("K-3").unwrap()["Order"].get("Jobs").is_none());
}
