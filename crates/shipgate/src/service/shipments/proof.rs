//! Keeping a carrier's proof of delivery (docs/product.md "Proof of delivery and
//! documents"): the signature passes the content check (`domain::document::check`) and
//! the size limit (`document_max_bytes`) and is stored once per content hash, however
//! often a poll repeats it; the shipment keeps `{name, at, signature?}` naming it. A
//! refused file is never stored: the history says why, once per new proof.

use serde_json::json;
use sha2::{Digest as _, Sha256};
use sqlx::PgConnection;

use crate::domain::document::check;
use crate::domain::{ProofOfDelivery, ProofReport, SignatureRef};
use crate::ids;
use crate::service::Result;
use crate::store::documents::NewDocument;
use crate::store::shipments::ShipmentRow;
use crate::store::{self, Actor};

/// The document kind of a proof of delivery's signature.
pub const SIGNATURE: &str = "signature";

/// Keep `report` on the shipment `row` (locked by the caller's transaction). Returns
/// whether the shipment's proof changed.
pub async fn keep(
    conn: &mut PgConnection,
    row: &ShipmentRow,
    report: &ProofReport,
    max_bytes: usize,
    actor: &Actor,
) -> Result<bool> {
    let (tenant, shipment_id) = (row.tenant_id.as_str(), row.id.as_str());
    let before = row.proof_of_delivery.as_ref().map(|p| &p.0);
    let mut refused = None;
    let mut stored = None;
    let signature = match &report.signature {
        Some(file) => match check(file, max_bytes) {
            Ok(content_type) => {
                let sha256 = Sha256::digest(&file.bytes);
                let id = ids::new_id("doc");
                let (doc, new) = store::documents::insert_once(
                    &mut *conn,
                    &NewDocument {
                        tenant_id: tenant,
                        id: &id,
                        shipment_id,
                        kind: SIGNATURE,
                        content_type: &content_type,
                        sha256: sha256.as_slice(),
                        content: &file.bytes,
                    },
                )
                .await?;
                let sig =
                    SignatureRef { document_id: doc.id, content_type: doc.content_type, size: i64::from(doc.size) };
                if new {
                    stored = Some(sig.clone());
                }
                Some(sig)
            }
            Err(why) => {
                refused = Some(why.to_string());
                // A signature kept earlier stays: a bad repeat does not erase it.
                before.and_then(|p| p.signature.clone())
            }
        },
        None => before.and_then(|p| p.signature.clone()),
    };
    let proof = ProofOfDelivery { name: report.name.clone(), at: report.at, signature };
    let changed = store::shipments::set_proof(&mut *conn, tenant, shipment_id, &proof).await?;
    if let Some(sig) = stored {
        store::shipments::insert_history(
            &mut *conn,
            tenant,
            shipment_id,
            actor,
            "document_stored",
            &json!({"document_id": sig.document_id, "kind": SIGNATURE, "content_type": sig.content_type, "size": sig.size}),
        )
        .await?;
    }
    if changed {
        if let Some(reason) = &refused {
            tracing::warn!(shipment_id, %reason, "a proof-of-delivery signature was refused");
            store::shipments::insert_history(
                &mut *conn,
                tenant,
                shipment_id,
                actor,
                "document_refused",
                &json!({"kind": SIGNATURE, "reason": reason}),
            )
            .await?;
        }
        store::shipments::insert_history(
            &mut *conn,
            tenant,
            shipment_id,
            actor,
            "proof_of_delivery",
            &serde_json::to_value(&proof).map_err(crate::service::Error::internal)?,
        )
        .await?;
    }
    Ok(changed)
}
