//! A real browser: headless Chromium (Debian's `chromium`, which `./dev test` installs
//! when it is missing), driven over the DevTools protocol on a pipe (fd 3 in, fd 4
//! out, messages ended by NUL) — no WebDriver, no WebSocket, no extra crate.

use base64::Engine;
use serde_json::{json, Value};
use std::{
    collections::HashMap,
    io::{BufRead, BufReader, Write},
    process::{Child, ChildStdin, Command, Stdio},
    sync::{mpsc, Arc, Mutex},
    time::{Duration, Instant},
};

/// How long one protocol call may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

type Pending = Arc<Mutex<HashMap<u64, mpsc::Sender<Value>>>>;

pub struct Browser {
    child: Child,
    commands: Mutex<ChildStdin>,
    next_id: Mutex<u64>,
    pending: Pending,
    /// Every event the browser sent (Network.requestWillBeSent, …), in order.
    pub events: Arc<Mutex<Vec<Value>>>,
    _profile: TempDir,
}

/// A page (tab) of the browser, attached with its own session.
pub struct Page<'a> {
    browser: &'a Browser,
    session: String,
}

struct TempDir(std::path::PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn chromium() -> String {
    for candidate in ["chromium", "chromium-browser", "google-chrome"] {
        if Command::new("sh")
            .args(["-c", &format!("command -v {candidate}")])
            .output()
            .is_ok_and(|o| o.status.success())
        {
            return candidate.to_owned();
        }
    }
    panic!("no chromium on this machine: `./dev test` installs Debian's chromium (apt-get install chromium)");
}

impl Browser {
    pub fn launch() -> Browser {
        let profile = std::env::temp_dir().join(format!(
            "qrgate-chromium-{}",
            qrgate_domain::ids::random_base32(10)
        ));
        std::fs::create_dir_all(&profile).unwrap();
        // The shell hands our stdin to chromium as fd 3 and our stdout as fd 4, then
        // points chromium's own stdin and stdout elsewhere.
        let script = format!(
            "exec {} --headless=new --no-sandbox --disable-gpu --no-first-run --no-default-browser-check \
             --disable-extensions --disable-background-networking --disable-sync --mute-audio \
             --user-data-dir={} --remote-debugging-pipe 3<&0 4>&1 0</dev/null 1>/dev/null",
            chromium(),
            profile.display()
        );
        let mut child = Command::new("sh")
            .args(["-c", &script])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromium starts");
        let commands = child.stdin.take().unwrap();
        let output = child.stdout.take().unwrap();
        let pending: Pending = Arc::default();
        let events: Arc<Mutex<Vec<Value>>> = Arc::default();
        {
            let (pending, events) = (pending.clone(), events.clone());
            std::thread::spawn(move || {
                let mut reader = BufReader::new(output);
                let mut message = Vec::new();
                while reader.read_until(0, &mut message).is_ok_and(|n| n > 0) {
                    message.pop();
                    if let Ok(value) = serde_json::from_slice::<Value>(&message) {
                        match value["id"].as_u64() {
                            Some(id) => {
                                if let Some(tx) = pending.lock().unwrap().remove(&id) {
                                    let _ = tx.send(value);
                                }
                            }
                            None => events.lock().unwrap().push(value),
                        }
                    }
                    message.clear();
                }
            });
        }
        Browser {
            child,
            commands: Mutex::new(commands),
            next_id: Mutex::new(0),
            pending,
            events,
            _profile: TempDir(profile),
        }
    }

    /// One protocol call; its `result`, or a panic with the browser's error.
    pub fn call(&self, session: Option<&str>, method: &str, params: Value) -> Value {
        self.try_call(session, method, params)
            .unwrap_or_else(|error| panic!("{method}: {error}"))
    }

    /// One protocol call; its `result`, or the browser's error (a panic only if the
    /// browser does not answer at all).
    fn try_call(&self, session: Option<&str>, method: &str, params: Value) -> Result<Value, Value> {
        let id = {
            let mut next = self.next_id.lock().unwrap();
            *next += 1;
            *next
        };
        let (tx, rx) = mpsc::channel();
        self.pending.lock().unwrap().insert(id, tx);
        let mut message = json!({"id": id, "method": method, "params": params});
        if let Some(session) = session {
            message["sessionId"] = json!(session);
        }
        {
            let mut commands = self.commands.lock().unwrap();
            let mut bytes = serde_json::to_vec(&message).unwrap();
            bytes.push(0);
            commands.write_all(&bytes).unwrap();
            commands.flush().unwrap();
        }
        let answer = rx
            .recv_timeout(CALL_TIMEOUT)
            .unwrap_or_else(|_| panic!("chromium did not answer {method}"));
        match answer.get("error") {
            Some(error) => Err(error.clone()),
            None => Ok(answer["result"].clone()),
        }
    }

    /// A new tab of `width` × `height` CSS pixels (`mobile`: a phone's viewport).
    pub fn page(&self, width: u32, height: u32, mobile: bool) -> Page<'_> {
        let target = self.call(None, "Target.createTarget", json!({"url": "about:blank"}));
        let attached = self.call(
            None,
            "Target.attachToTarget",
            json!({"targetId": target["targetId"], "flatten": true}),
        );
        let page = Page {
            browser: self,
            session: attached["sessionId"].as_str().unwrap().to_owned(),
        };
        page.call("Page.enable", json!({}));
        page.call("Network.enable", json!({}));
        page.call("Runtime.enable", json!({}));
        page.call(
            "Emulation.setDeviceMetricsOverride",
            json!({"width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile}),
        );
        page
    }

    /// Every URL the browser requested so far.
    pub fn requested_urls(&self) -> Vec<String> {
        self.events
            .lock()
            .unwrap()
            .iter()
            .filter(|e| e["method"] == "Network.requestWillBeSent")
            .filter_map(|e| e["params"]["request"]["url"].as_str().map(str::to_owned))
            .collect()
    }

    /// The JavaScript errors and console errors the pages reported.
    pub fn page_errors(&self) -> Vec<String> {
        self.events
            .lock()
            .unwrap()
            .iter()
            .filter(|e| {
                e["method"] == "Runtime.exceptionThrown"
                    || (e["method"] == "Runtime.consoleAPICalled" && e["params"]["type"] == "error")
            })
            .map(|e| e["params"].to_string())
            .collect()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Page<'_> {
    pub fn call(&self, method: &str, params: Value) -> Value {
        self.browser.call(Some(&self.session), method, params)
    }

    pub fn goto(&self, url: &str) {
        self.call("Page.navigate", json!({"url": url}));
        self.wait_for("document.readyState === 'complete'");
    }

    /// The value of a JavaScript expression (promises awaited).
    pub fn eval(&self, expression: &str) -> Value {
        let result = self.call(
            "Runtime.evaluate",
            json!({"expression": expression, "awaitPromise": true, "returnByValue": true}),
        );
        if let Some(exception) = result.get("exceptionDetails") {
            panic!("{expression}: {exception}");
        }
        result["result"]["value"].clone()
    }

    /// Waits (at most 15 s) until the expression is truthy.
    pub fn wait_for(&self, expression: &str) {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let value = self.browser.try_call(
                Some(&self.session),
                "Runtime.evaluate",
                json!({"expression": format!("Boolean({expression})"), "returnByValue": true}),
            );
            match value {
                Ok(value) if value["result"]["value"] == true => return,
                Ok(_) => {}
                // The page is between documents (a click or a redirect navigated it while
                // the expression was on its way): not yet, ask the next document.
                Err(error) if navigating(&error) => {}
                Err(error) => panic!("Runtime.evaluate: {error}"),
            }
            assert!(Instant::now() < deadline, "waited 15 s for {expression}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Types text as key presses into the focused element or the page.
    pub fn type_keys(&self, text: &str) {
        for c in text.chars() {
            let key = c.to_string();
            for kind in ["keyDown", "keyUp"] {
                self.call(
                    "Input.dispatchKeyEvent",
                    json!({"type": kind, "key": key, "text": if kind == "keyDown" { key.clone() } else { String::new() }}),
                );
            }
        }
    }

    pub fn click(&self, selector: &str) {
        self.wait_for(&format!("document.querySelector({selector:?}) && !document.querySelector({selector:?}).disabled"));
        self.eval(&format!("document.querySelector({selector:?}).click()"));
    }

    pub fn visible(&self, id: &str) -> bool {
        self.eval(&format!(
            "!document.getElementById({id:?}).closest('.hidden')"
        )) == true
    }

    pub fn text(&self, id: &str) -> String {
        self.eval(&format!("document.getElementById({id:?}).textContent"))
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// A PNG of the viewport, written to the screenshots folder as `name.png`.
    pub fn screenshot(&self, name: &str) -> Vec<u8> {
        let shot = self.call("Page.captureScreenshot", json!({"format": "png"}));
        let png = base64::engine::general_purpose::STANDARD
            .decode(shot["data"].as_str().unwrap())
            .unwrap();
        let dir = screenshot_dir();
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("{name}.png")), &png).unwrap();
        png
    }
}

/// Where screenshots go: `QRGATE_SCREENSHOT_DIR`, else the system's temp folder.
/// (`QRGATE_SCREENSHOT_DIR=docs/screenshots` refreshes the ones the README shows.)
pub fn screenshot_dir() -> std::path::PathBuf {
    match std::env::var_os("QRGATE_SCREENSHOT_DIR") {
        Some(dir) => {
            let dir = std::path::PathBuf::from(dir);
            if dir.is_absolute() {
                dir
            } else {
                std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("..")
                    .join(dir)
            }
        }
        None => std::env::temp_dir().join("qrgate-screenshots"),
    }
}

/// The text of every QR code in a PNG.
pub fn qr_codes_in(png: &[u8]) -> Vec<String> {
    let mut decoder = png::Decoder::new(png);
    decoder.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
    let mut reader = decoder.read_info().unwrap();
    let mut pixels = vec![0; reader.output_buffer_size()];
    let frame = reader.next_frame(&mut pixels).unwrap();
    let channels = frame.color_type.samples();
    let (width, height) = (frame.width as usize, frame.height as usize);
    let grey = |x: usize, y: usize| -> u8 {
        let at = (y * width + x) * channels;
        if channels >= 3 {
            ((u32::from(pixels[at]) * 299
                + u32::from(pixels[at + 1]) * 587
                + u32::from(pixels[at + 2]) * 114)
                / 1000) as u8
        } else {
            pixels[at]
        }
    };
    let mut image = rqrr::PreparedImage::prepare_from_greyscale(width, height, grey);
    image
        .detect_grids()
        .into_iter()
        .filter_map(|grid| grid.decode().ok().map(|(_, text)| text))
        .collect()
}

/// Whether a protocol error only says the page navigated under the call.
fn navigating(error: &Value) -> bool {
    let message = error["message"].as_str().unwrap_or_default();
    [
        "Inspected target navigated or closed",
        "Execution context was destroyed",
        "Cannot find context with specified id",
    ]
    .iter()
    .any(|known| message.contains(known))
}
