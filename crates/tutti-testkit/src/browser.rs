//! `Browser`: a real headless Chromium driven over WebDriver (Debian's `chromium` and
//! `chromium-driver`, installed by `.ci/run`), for the dashboard tests.
//!
//! The WebDriver protocol is JSON over HTTP; the few commands the tests need (open a page,
//! find elements, click, type, read text and attributes, run a script, take a screenshot)
//! are written here on top of reqwest instead of pulling in a client crate with its own
//! TLS stack. `chromedriver` runs in its own process group on a free port and is killed
//! with Chromium when the `Browser` is dropped.
//!
//! ```no_run
//! # async fn example() {
//! let browser = tutti_testkit::Browser::start().await;
//! browser.goto("http://127.0.0.1:8080/login").await;
//! browser.find("#username").await.type_text("admin").await;
//! # }
//! ```

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{Value, json};
use tempfile::TempDir;

use crate::process::free_port;

/// How long `find` and `wait_*` wait before failing the test.
pub const BROWSER_WAIT: Duration = Duration::from_secs(20);

/// The W3C key for an element reference in WebDriver answers.
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

/// A headless Chromium session.
#[derive(Debug)]
pub struct Browser {
    http: reqwest::Client,
    session_url: String,
    driver: Child,
    _profile: TempDir,
}

/// An element of the current page.
#[derive(Debug)]
pub struct Element<'a> {
    browser: &'a Browser,
    id: String,
}

fn binary(env: &str, default: &str) -> PathBuf {
    let path = std::env::var_os(env).map_or_else(|| PathBuf::from(default), PathBuf::from);
    assert!(
        path.exists(),
        "{} not found: install Debian's chromium and chromium-driver packages \
         (`apt-get install chromium chromium-driver`, as .ci/run does) or set {env}",
        path.display()
    );
    path
}

impl Browser {
    /// Starts chromedriver and a headless Chromium with a fresh profile, 1280×900.
    pub async fn start() -> Browser {
        let chromium = binary("TUTTI_CHROMIUM", "/usr/bin/chromium");
        let chromedriver = binary("TUTTI_CHROMEDRIVER", "/usr/bin/chromedriver");
        let profile = tempfile::Builder::new()
            .prefix("tutti-chromium-")
            .tempdir()
            .expect("profile dir");
        let port = free_port();
        let mut command = Command::new(&chromedriver);
        command
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        let driver = command.spawn().expect("start chromedriver");
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .expect("http client");
        let base = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + BROWSER_WAIT;
        loop {
            let ready = http
                .get(format!("{base}/status"))
                .send()
                .await
                .ok()
                .map(|response| response.status().is_success())
                .unwrap_or(false);
            if ready {
                break;
            }
            assert!(Instant::now() < deadline, "chromedriver did not start");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let capabilities = json!({ "capabilities": { "alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium,
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                    "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync",
                    "--disable-dev-shm-usage", "--window-size=1280,900",
                    format!("--user-data-dir={}", profile.path().display()),
                ],
            },
        } } });
        let answer: Value = http
            .post(format!("{base}/session"))
            .json(&capabilities)
            .send()
            .await
            .expect("create a WebDriver session")
            .json()
            .await
            .expect("WebDriver session answer");
        let session = answer["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no WebDriver session: {answer}"))
            .to_string();
        Browser {
            http,
            session_url: format!("{base}/session/{session}"),
            driver,
            _profile: profile,
        }
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut request = self
            .http
            .request(method.clone(), format!("{}{path}", self.session_url));
        if let Some(body) = body {
            request = request.json(&body);
        } else if method == reqwest::Method::POST {
            request = request.json(&json!({}));
        }
        let answer: Value = request
            .send()
            .await
            .unwrap_or_else(|err| panic!("WebDriver {method} {path}: {err}"))
            .json()
            .await
            .unwrap_or_else(|err| panic!("WebDriver {method} {path} answer: {err}"));
        answer["value"].clone()
    }

    async fn post(&self, path: &str, body: Value) -> Value {
        self.call(reqwest::Method::POST, path, Some(body)).await
    }

    async fn get(&self, path: &str) -> Value {
        self.call(reqwest::Method::GET, path, None).await
    }

    /// Opens `url` and waits for the page to load.
    pub async fn goto(&self, url: &str) {
        let answer = self.post("/url", json!({ "url": url })).await;
        assert!(answer.is_null(), "navigation to {url} failed: {answer}");
    }

    /// The current address.
    pub async fn url(&self) -> String {
        self.get("/url")
            .await
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// Sets the window size (for narrow-screen screenshots).
    pub async fn set_size(&self, width: u32, height: u32) {
        self.post("/window/rect", json!({ "width": width, "height": height }))
            .await;
    }

    /// Runs `script` (a function body; `arguments` holds `args`) and returns its value.
    pub async fn execute(&self, script: &str, args: Vec<Value>) -> Value {
        self.post("/execute/sync", json!({ "script": script, "args": args }))
            .await
    }

    /// The elements matching `css` now (possibly none).
    pub async fn find_all(&self, css: &str) -> Vec<Element<'_>> {
        let answer = self
            .post(
                "/elements",
                json!({ "using": "css selector", "value": css }),
            )
            .await;
        answer
            .as_array()
            .map(|items| {
                items
                    .iter()
                    .filter_map(|item| item[ELEMENT_KEY].as_str())
                    .map(|id| Element {
                        browser: self,
                        id: id.to_string(),
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The first element matching `css`, waiting for it to appear.
    pub async fn find(&self, css: &str) -> Element<'_> {
        let deadline = Instant::now() + BROWSER_WAIT;
        loop {
            if let Some(element) = self.find_all(css).await.into_iter().next() {
                return element;
            }
            if Instant::now() > deadline {
                let url = self.url().await;
                let body = self
                    .execute(
                        "return document.body ? document.body.innerText : ''",
                        vec![],
                    )
                    .await;
                panic!("no element {css:?} on {url} within {BROWSER_WAIT:?}; page text:\n{body}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until `script` (a function body returning a boolean) returns true.
    pub async fn wait_until(&self, what: &str, script: &str, args: Vec<Value>) {
        let deadline = Instant::now() + BROWSER_WAIT;
        loop {
            if self.execute(script, args.clone()).await == Value::Bool(true) {
                return;
            }
            if Instant::now() > deadline {
                let url = self.url().await;
                panic!("{what}: not true on {url} within {BROWSER_WAIT:?}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The visible text of the page.
    pub async fn page_text(&self) -> String {
        self.execute("return document.body.innerText", vec![])
            .await
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// Answers every `confirm()` of the page with OK (actions that ask first).
    pub async fn accept_confirms(&self) {
        self.execute("window.confirm = () => true; return true", vec![])
            .await;
    }

    /// Saves a PNG screenshot of the viewport to `path` (directories are created).
    pub async fn screenshot(&self, path: &Path) {
        let answer = self.get("/screenshot").await;
        let data = answer.as_str().expect("screenshot data");
        let png = base64::engine::general_purpose::STANDARD
            .decode(data)
            .expect("screenshot is base64");
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).expect("screenshot dir");
        }
        std::fs::write(path, png).expect("write screenshot");
    }
}

impl Element<'_> {
    fn path(&self, rest: &str) -> String {
        format!("/element/{}{rest}", self.id)
    }

    /// Clicks it (scrolled into view by the driver).
    pub async fn click(&self) {
        let answer = self.browser.post(&self.path("/click"), json!({})).await;
        assert!(answer.is_null(), "click failed: {answer}");
    }

    /// Types `text` into it.
    pub async fn type_text(&self, text: &str) {
        let answer = self
            .browser
            .post(&self.path("/value"), json!({ "text": text }))
            .await;
        assert!(answer.is_null(), "typing failed: {answer}");
    }

    /// Empties an input.
    pub async fn clear(&self) {
        self.browser.post(&self.path("/clear"), json!({})).await;
    }

    /// Its rendered text.
    pub async fn text(&self) -> String {
        self.browser
            .get(&self.path("/text"))
            .await
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// An attribute's value.
    pub async fn attr(&self, name: &str) -> Option<String> {
        self.browser
            .get(&self.path(&format!("/attribute/{name}")))
            .await
            .as_str()
            .map(str::to_string)
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Chromium runs in chromedriver's process group; end them together.
        let group = nix::unistd::Pid::from_raw(self.driver.id() as i32);
        let _ = nix::sys::signal::killpg(group, nix::sys::signal::Signal::SIGKILL);
        let _ = self.driver.wait();
    }
}
