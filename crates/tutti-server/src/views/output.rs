//! A result's output as people read it: the full text from the object store when the agent
//! uploaded it and it matches what the result pinned, the inline text otherwise.

use tokio::io::AsyncReadExt as _;
use tutti_api::runs::{OutputSource, ResolvedOutput};
use tutti_proto::catalog::OUTPUT_STORE;
use tutti_proto::result::{ObjectRef, Output};

use crate::app::App;

/// Largest output object the server loads for one result detail.
const MAX_OBJECT_BYTES: u64 = 64 << 20;

/// The full text of one output stream: the verified object when there is one, else the
/// inline text (the dashboard's run page shows it without script).
pub(crate) async fn resolve(app: &App, output: &Output) -> ResolvedOutput {
    let inline = || ResolvedOutput {
        text: output.inline.clone(),
        source: OutputSource::Inline,
        object_error: None,
    };
    let Some(object) = &output.object else {
        return inline();
    };
    match fetch_object(app, object).await {
        Ok(bytes) => ResolvedOutput {
            text: String::from_utf8_lossy(&bytes).into_owned(),
            source: OutputSource::Object,
            object_error: None,
        },
        Err(reason) => {
            tracing::warn!(object = %object.name, reason, "An output object could not be used; showing the inline output.");
            ResolvedOutput {
                object_error: Some(reason),
                ..inline()
            }
        }
    }
}

/// Loads an output object and checks it against the size and sha256 the result pinned.
async fn fetch_object(app: &App, object: &ObjectRef) -> Result<Vec<u8>, String> {
    if object.bucket != OUTPUT_STORE {
        return Err(format!("unexpected bucket {:?}", object.bucket));
    }
    if object.size > MAX_OBJECT_BYTES {
        return Err(format!(
            "object of {} bytes is over the {MAX_OBJECT_BYTES}-byte display limit",
            object.size
        ));
    }
    let timeout = app.bus.request_timeout() * 4;
    let read = async {
        let store = app
            .bus
            .jetstream()
            .get_object_store(OUTPUT_STORE)
            .await
            .map_err(|err| err.to_string())?;
        let mut reader = store
            .get(&object.name)
            .await
            .map_err(|err| err.to_string())?;
        let mut bytes = Vec::new();
        reader
            .read_to_end(&mut bytes)
            .await
            .map_err(|err| err.to_string())?;
        Ok::<_, String>(bytes)
    };
    let bytes = tokio::time::timeout(timeout, read)
        .await
        .map_err(|_| "reading the object timed out".to_string())??;
    if bytes.len() as u64 != object.size {
        return Err(format!(
            "object is {} bytes, the result says {}",
            bytes.len(),
            object.size
        ));
    }
    if tutti_proto::digest::sha256_hex(&bytes) != object.sha256 {
        return Err("object sha256 does not match the result".into());
    }
    Ok(bytes)
}
