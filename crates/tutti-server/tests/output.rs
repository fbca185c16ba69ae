//! Run output end to end: large output resolved through the `tutti_output` object store
//! (and refused when the object was tampered with), and live output over SSE while the
//! process still runs. Real broker, real server, real agent.

mod common;

use std::path::Path;

use common::*;
use futures::StreamExt;
use serde_json::{Value, json};
use tutti_testkit::{SERVER_WAIT, TestAgent, TestNats, TestServer};

/// More than the agent's 256 KiB inline limit, less than the run's output limit.
const N_BYTES: usize = 3_000_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_output_is_read_from_the_object_store_and_a_tampered_object_is_refused() {
    let nats = TestNats::start();
    let server = TestServer::start(&nats).await;
    let _web = TestAgent::spawn(&server, "web-01").await;
    wait_online(&server, &["web-01"]).await;
    let run_id = create_run(
        &server,
        json!({
            "script": {
                "script": format!("head -c {N_BYTES} /dev/zero | tr '\\0' 'a'"),
                "output_limit_bytes": 4_000_000
            },
            "targets": {"agents": ["web-01"]}
        }),
    )
    .await;
    let view = wait_run_done(&server, &run_id).await;
    assert_eq!(state_of(&view, "web-01"), "succeeded", "{view:#}");

    // The detail reads the whole output from the object the result points at.
    let detail_path = format!("/api/v1/runs/{run_id}/results/web-01");
    let detail: Value = server.get(&detail_path).await;
    let stdout = &detail["result"]["stdout"];
    assert_eq!(stdout["object"]["size"], N_BYTES, "{stdout:#}");
    assert_eq!(stdout["total_bytes"], N_BYTES);
    let full = &detail["stdout_full"];
    assert_eq!(full["source"], "object", "{}", full["object_error"]);
    assert!(full["object_error"].is_null());
    let text = full["text"].as_str().unwrap();
    assert_eq!(text.len(), N_BYTES);
    assert!(text.bytes().all(|byte| byte == b'a'));

    // The list shows only the inline head, with the truncation marker.
    let results: Value = server.get(&format!("/api/v1/runs/{run_id}/results")).await;
    let inline = results["items"][0]["result"]["stdout"]["inline"]
        .as_str()
        .unwrap();
    let inline_limit = tutti_proto::config::DEFAULT_INLINE_OUTPUT_LIMIT_BYTES as usize;
    let marker = tutti_proto::result::truncation_marker((N_BYTES - inline_limit) as u64);
    assert_eq!(inline.len(), inline_limit + marker.len());
    assert!(
        inline.starts_with("aaaa") && inline.ends_with(&marker),
        "{marker}"
    );

    // Any agent credential can write the bucket: an overwritten object must be caught,
    // by its sha256 when the size is kept, by its size otherwise.
    let object_name = stdout["object"]["name"].as_str().unwrap().to_string();
    let cases: [(Vec<u8>, &str); 2] = [
        (vec![b'b'; N_BYTES], "sha256"),
        (b"short".to_vec(), "bytes"),
    ];
    for (forged, expected_error) in cases {
        overwrite_object(&nats, &object_name, &forged).await;
        let detail: Value = server.get(&detail_path).await;
        let full = &detail["stdout_full"];
        assert_eq!(full["source"], "inline", "{expected_error}: {full:#}");
        let error = full["object_error"].as_str().unwrap_or_default();
        assert!(error.contains(expected_error), "{error}");
        assert_eq!(full["text"], detail["result"]["stdout"]["inline"]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_output_arrives_while_the_process_still_runs() {
    let nats = TestNats::start();
    let server = TestServer::start(&nats).await;
    let _web = TestAgent::spawn(&server, "web-01").await;
    wait_online(&server, &["web-01"]).await;
    let dir = tempfile::tempdir().unwrap();
    let go = dir.path().join("go");
    let marker = dir.path().join("marker");
    let script = format!(
        "until [ -e '{go}' ]; do sleep 0.05; done; echo first line\n\
         until [ -e '{marker}' ]; do sleep 0.05; done; echo second line",
        go = go.display(),
        marker = marker.display(),
    );
    let run_id = create_run(
        &server,
        json!({"script": {"script": script}, "targets": {"agents": ["web-01"]}}),
    )
    .await;

    let mut output = OutputStream::connect(&server, &run_id).await;
    // The process prints only once the stream is connected, so no line can be missed.
    touch(&go);
    let chunk = output.next_chunk_containing("first line").await;
    assert_eq!(chunk["agent_id"], "web-01");
    assert!(
        !output.seen.contains("second line"),
        "the second line before the marker: {}",
        output.seen
    );
    // The started event is projected in its own batch, so the state may lag the output.
    server
        .wait_for(
            &format!("/api/v1/runs/{run_id}"),
            "the target to be running",
            |view| state_of(view, "web-01") == "running",
        )
        .await;

    touch(&marker);
    output.next_chunk_containing("second line").await;
    let view = wait_run_done(&server, &run_id).await;
    assert_eq!(state_of(&view, "web-01"), "succeeded");
}

/// A client of `GET /runs/{id}/output`, keeping every `output` event's text.
struct OutputStream {
    body: futures::stream::BoxStream<'static, reqwest::Result<bytes::Bytes>>,
    buffer: String,
    seen: String,
}

impl OutputStream {
    async fn connect(server: &TestServer, run_id: &str) -> OutputStream {
        let url = format!("{}/api/v1/runs/{run_id}/output", server.url());
        let response = server.http().get(&url).send().await.expect("output stream");
        assert!(response.status().is_success(), "{}", response.status());
        let content_type = response.headers()["content-type"].to_str().unwrap();
        assert_eq!(content_type, "text/event-stream");
        OutputStream {
            body: response.bytes_stream().boxed(),
            buffer: String::new(),
            seen: String::new(),
        }
    }

    /// Reads events until an `output` chunk contains `needle`; returns that chunk.
    async fn next_chunk_containing(&mut self, needle: &str) -> Value {
        let deadline = tokio::time::Instant::now() + SERVER_WAIT;
        loop {
            while let Some(end) = self.buffer.find("\n\n") {
                let event: String = self.buffer.drain(..end + 2).collect();
                let Some(chunk) = output_chunk(&event) else {
                    continue;
                };
                self.seen.push_str(chunk["text"].as_str().unwrap());
                if chunk["text"].as_str().unwrap().contains(needle) {
                    return chunk;
                }
            }
            let bytes = tokio::time::timeout_at(deadline, self.body.next())
                .await
                .unwrap_or_else(|_| panic!("no output with {needle:?}; seen {:?}", self.seen))
                .expect("stream open")
                .expect("chunk");
            self.buffer.push_str(&String::from_utf8_lossy(&bytes));
        }
    }
}

/// The JSON of an `event: output` block; `None` for keep-alives and other events.
fn output_chunk(event: &str) -> Option<Value> {
    let name = event
        .lines()
        .find_map(|line| line.strip_prefix("event: "))?;
    let data = event.lines().find_map(|line| line.strip_prefix("data: "))?;
    (name == "output").then(|| serde_json::from_str(data).expect("output event JSON"))
}

fn touch(path: &Path) {
    std::fs::write(path, b"").unwrap();
}

/// Replaces an object in `tutti_output`, as a misbehaving agent could.
async fn overwrite_object(nats: &TestNats, name: &str, bytes: &[u8]) {
    let js = nats.jetstream().await;
    let store = js
        .get_object_store(tutti_proto::catalog::OUTPUT_STORE)
        .await
        .unwrap();
    let mut reader = bytes;
    store.put(name, &mut reader).await.unwrap();
}
