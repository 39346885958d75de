//! The sandbox's issue-12 demo, once the server answers: an e-Courier shipment delivered
//! with a signed proof of delivery (its signature kept as a document), and an eCMR
//! reconcile report over the simulator's shipment overview. Prints how to see both.

use std::time::Duration;

use serde_json::json;

use super::Simulators;
use crate::app::AppState;
use crate::domain::ProofOfDelivery;
use crate::http::shipments::ShipmentIn;
use crate::service::shipments::{self, Created};
use crate::service::{Caller, jobs, reconcile};

/// Shipments the demo keeps in the eCMR simulator's overview (three pages of 100).
const ECMR_DEMO_SHIPMENTS: usize = 250;

/// What the demo runs on.
pub struct PodDemo {
    pub tenant_id: String,
    pub ecourier_connection_id: String,
    pub ecmr_connection_id: String,
    pub ecmr_organization_id: String,
    pub base: String,
}

/// Run the demo in the background; it prints its own lines when done.
pub fn spawn(state: AppState, sims: Simulators, demo: PodDemo) {
    tokio::spawn(async move {
        // The simulators are mounted on the gateway's own server: wait until it answers.
        tokio::time::sleep(Duration::from_millis(500)).await;
        match run(&state, &sims, &demo).await {
            Ok(text) => println!("{text}"),
            Err(e) => eprintln!("the proof-of-delivery / reconcile demo did not finish: {e:#}"),
        }
    });
}

async fn run(state: &AppState, sims: &Simulators, demo: &PodDemo) -> anyhow::Result<String> {
    let caller = Caller { tenant_id: demo.tenant_id.clone(), key_id: "sandbox".into() };
    let body: ShipmentIn = serde_json::from_value(json!({
        "connection_id": demo.ecourier_connection_id, "reference": format!("POD-DEMO-{}", rand::random::<u32>()),
        "stops": [
            {"sequence": 1, "type": "pickup", "name": "James Madison", "address": {"line1": "2251 Orange Blossom Trail",
             "city": "Orlando", "state": "FL", "postal_code": "32804", "country": "US"}},
            {"sequence": 2, "type": "delivery", "name": "Bryan Moore", "address": {"line1": "2253 Orange Blossom Trail",
             "city": "Orlando", "state": "FL", "postal_code": "32804", "country": "US"}}],
        "parcels": [{"reference": "PKG-1", "quantity": 1}]
    }))?;
    let shipment = match shipments::create(state, &caller, body.into()).await? {
        Created::Booked(s) | Created::Pending(s) | Created::AlreadyRegistered(s) => s,
    };
    let number = shipment.carrier_reference.clone().unwrap_or_default();
    // Assigned, picked up, delivered: the simulator signs for it (a PNG in PodSign).
    for _ in 0..3 {
        sims.ecourier.advance(&number).map_err(anyhow::Error::msg)?;
    }
    let delivered = shipments::refresh(state, &caller, &shipment.id).await?;
    let documents = shipments::documents(state, &caller, &shipment.id).await?;
    let proof: Option<ProofOfDelivery> =
        delivered.proof_of_delivery.as_ref().map(|p| p.parse()).transpose().map_err(anyhow::Error::from)?;
    let signature = proof.as_ref().and_then(|p| p.signature.as_ref());

    let have = sims.ecmr.shipment_count();
    if have < ECMR_DEMO_SHIPMENTS {
        sims.ecmr.seed(&demo.ecmr_organization_id, "SANDBOX", ECMR_DEMO_SHIPMENTS - have);
    }
    let started = reconcile::start(state, &caller, &demo.ecmr_connection_id, false).await?;
    let mut job = jobs::get(state, &caller, &started.job_id).await?;
    for _ in 0..600 {
        if job.state != "queued" && job.state != "running" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        job = jobs::get(state, &caller, &started.job_id).await?;
    }
    let report = job.progress.as_ref().map(|p| (p.pages, p.report.clone())).unwrap_or_default();
    let base = &demo.base;
    Ok(format!(
        r#"
Proof of delivery (issue 12): e-Courier shipment {id} is {status}, signed by {name}
  GET {base}/v1/shipments/{id}                  proof_of_delivery {{name, at, signature}}
  GET {base}/v1/shipments/{id}/documents        {docs} document(s)
  GET {base}/v1/shipments/{id}/documents/{doc}  the signature ({ctype}, {size} bytes)

eCMR reconcile report ({state}): {pages} pages, {seen} shipments seen, {only} only at the carrier, {missing} missing there
  GET {base}/v1/jobs/{job}                       progress and report
  GET {base}/v1/connections/{ecmr}/reconciliations
  POST {base}/v1/connections/{ecmr}/reconcile  {{"import": true}} imports the carrier-only ones
"#,
        id = delivered.id,
        status = delivered.status.as_str(),
        name = proof.as_ref().and_then(|p| p.name.clone()).unwrap_or_else(|| "nobody".into()),
        docs = documents.len(),
        doc = signature.map(|s| s.document_id.as_str()).unwrap_or("-"),
        ctype = signature.map(|s| s.content_type.as_str()).unwrap_or("-"),
        size = signature.map(|s| s.size).unwrap_or(0),
        state = job.state,
        pages = report.0,
        seen = report.1["seen"],
        only = report.1["carrier_only"],
        missing = report.1["missing_at_carrier"],
        job = started.job_id,
        ecmr = demo.ecmr_connection_id,
    ))
}
