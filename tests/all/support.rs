//! Test support: a `sluice` node in a child process with its own temporary
//! data directory, found through the `ports.json` it writes, and a small HTTP
//! client whose every call returns the status and the parsed body.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

pub const BIN: &str = env!("CARGO_BIN_EXE_sluice");

/// A running node. Killed (SIGKILL) on drop.
pub struct TestNode {
    pub dir: tempfile::TempDir,
    pub config: Option<PathBuf>,
    child: Option<Child>,
    pub url: String,
    /// The MQTT listener's address.
    pub mqtt: std::net::SocketAddr,
    pub agent: ureq::Agent,
    /// The `Authorization` header the helpers send, for a node with users.
    pub credentials: Option<String>,
}

impl TestNode {
    /// Starts a node with no config file.
    pub fn start() -> Self {
        Self::start_with_config(None)
    }

    /// Starts a node with `config` (TOML text) written to a file beside the data.
    pub fn start_with_config(config: Option<&str>) -> Self {
        Self::start_with_files(config, &[])
    }

    /// Like [`TestNode::start_with_config`], with more files (name, text)
    /// written beside the config first (a users file, say).
    pub fn start_with_files(config: Option<&str>, files: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        for (name, text) in files {
            std::fs::write(dir.path().join(name), text).expect("write file");
        }
        let config = config.map(|text| {
            let path = dir.path().join("sluice.toml");
            std::fs::write(&path, text).expect("write config");
            path
        });
        let agent = agent();
        let mut node = TestNode {
            dir,
            config,
            child: None,
            url: String::new(),
            mqtt: "127.0.0.1:0".parse().unwrap(),
            agent,
            credentials: None,
        };
        node.launch();
        node
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn launch(&mut self) {
        let data = self.data_dir();
        let _ = std::fs::remove_file(data.join("ports.json"));
        let mut cmd = Command::new(BIN);
        cmd.arg("serve")
            .arg("--data-dir")
            .arg(&data)
            .args([
                "--http-listen",
                "127.0.0.1:0",
                "--mqtt-listen",
                "127.0.0.1:0",
            ])
            .env("SLUICE_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        if let Some(c) = &self.config {
            cmd.arg("--config").arg(c);
        }
        let child = cmd.spawn().expect("spawn sluice");
        self.child = Some(child);
        let ports = wait_for_ports(&data, self.child.as_mut().unwrap());
        self.url = format!("http://{}", ports["http"].as_str().expect("http port"));
        self.mqtt = ports["mqtt"]
            .as_str()
            .expect("mqtt port")
            .parse()
            .expect("mqtt address");
    }

    /// SIGKILL: no chance to flush or sync anything.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM and wait for a clean exit.
    pub fn stop(&mut self) -> std::process::ExitStatus {
        let mut c = self.child.take().expect("node running");
        Command::new("kill")
            .args(["-TERM", &c.id().to_string()])
            .status()
            .expect("kill -TERM");
        c.wait().expect("wait for node")
    }

    /// Starts the node again on the same data directory (new ports).
    pub fn restart(&mut self) {
        self.kill9();
        self.launch();
    }

    /// From now on the helpers call as user `name`.
    pub fn login(&mut self, name: &str, password: &str) {
        self.credentials = Some(basic(name, password));
    }

    /// `req` with the node's credentials, if it has any.
    pub fn authorized<B>(&self, req: ureq::RequestBuilder<B>) -> ureq::RequestBuilder<B> {
        match &self.credentials {
            Some(c) => req.header("authorization", c),
            None => req,
        }
    }

    pub fn get(&self, path: &str) -> (u16, Value) {
        into_json(
            self.authorized(self.agent.get(format!("{}{path}", self.url)))
                .call(),
        )
    }

    pub fn delete(&self, path: &str) -> (u16, Value) {
        into_json(
            self.authorized(self.agent.delete(format!("{}{path}", self.url)))
                .call(),
        )
    }

    pub fn put_json(&self, path: &str, body: &Value) -> (u16, Value) {
        into_json(
            self.authorized(self.agent.put(format!("{}{path}", self.url)))
                .header("content-type", "application/json")
                .send(body.to_string()),
        )
    }

    pub fn post_json(&self, path: &str, body: &Value) -> (u16, Value) {
        self.post_raw(
            path,
            body.to_string().as_bytes(),
            &[("content-type", "application/json")],
        )
    }

    pub fn post_raw(&self, path: &str, body: &[u8], headers: &[(&str, &str)]) -> (u16, Value) {
        let mut req = self.authorized(self.agent.post(format!("{}{path}", self.url)));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        into_json(req.send(body))
    }

    /// Publishes and insists on 200.
    pub fn publish(&self, topic: &str, payload: &[u8], headers: &[(&str, &str)]) -> Value {
        let (status, body) = self.post_raw(&format!("/v1/topics/{topic}"), payload, headers);
        assert_eq!(status, 200, "publish to {topic}: {body}");
        body
    }

    /// Creates a stream and insists on 201.
    pub fn create_stream(&self, name: &str, spec: Value) -> Value {
        let (status, body) = self.put_json(&format!("/v1/streams/{name}"), &spec);
        assert_eq!(status, 201, "create {name}: {body}");
        body
    }

    /// Every message of a partition from `from`, following next_offset.
    pub fn read_all(&self, stream: &str, partition: u32, from: u64) -> Vec<Value> {
        let mut out = Vec::new();
        let mut offset = from;
        loop {
            let (status, v) = self.get(&format!(
                "/v1/streams/{stream}/partitions/{partition}/messages?offset={offset}&limit=1000"
            ));
            assert_eq!(status, 200, "{v}");
            let msgs = v["messages"].as_array().unwrap().clone();
            if msgs.is_empty() {
                return out;
            }
            offset = v["next_offset"].as_u64().unwrap();
            out.extend(msgs);
        }
    }
}

impl Drop for TestNode {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// `method path` with `body` (sent as JSON) and an `Authorization` header
/// value, or none: the status, the body and the `WWW-Authenticate` challenge.
pub fn call(
    node: &TestNode,
    method: &str,
    path: &str,
    credentials: Option<&str>,
    body: &[u8],
) -> (u16, Value, Option<String>) {
    let mut req = ureq::http::Request::builder()
        .method(method)
        .uri(format!("{}{path}", node.url))
        .header("content-type", "application/json");
    if let Some(c) = credentials {
        req = req.header("authorization", c);
    }
    let resp = node.agent.run(req.body(body.to_vec()).unwrap());
    let challenge = resp.as_ref().ok().and_then(|r| {
        r.headers()
            .get("www-authenticate")
            .map(|v| v.to_str().unwrap().to_owned())
    });
    let (code, v) = into_json(resp);
    (code, v, challenge)
}

/// The streams a publish reply says it was appended to, sorted.
pub fn appended_streams(reply: &Value) -> Vec<&str> {
    let mut streams: Vec<&str> = reply["appends"]
        .as_array()
        .expect("appends")
        .iter()
        .map(|a| a["stream"].as_str().unwrap())
        .collect();
    streams.sort();
    streams
}

/// An `Authorization: Basic …` header value.
pub fn basic(name: &str, password: &str) -> String {
    use base64::Engine as _;
    let cred = base64::engine::general_purpose::STANDARD.encode(format!("{name}:{password}"));
    format!("Basic {cred}")
}

/// An HTTP client that hands back 4xx/5xx responses instead of errors.
pub fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into()
}

/// Runs `sluice serve --config CONFIG` in a fresh directory holding `files`
/// (name, text), insists that start-up fails, and returns what it printed.
pub fn serve_failing(config: &str, files: &[(&str, &str)]) -> String {
    let dir = tempfile::tempdir().expect("tempdir");
    for (name, text) in files {
        std::fs::write(dir.path().join(name), text).expect("write file");
    }
    let out = Command::new(BIN)
        .args([
            "serve",
            "--http-listen",
            "127.0.0.1:0",
            "--mqtt-listen",
            "127.0.0.1:0",
            "--data-dir",
        ])
        .arg(dir.path().join("data"))
        .arg("--config")
        .arg(dir.path().join(config))
        .output()
        .expect("run sluice");
    assert!(!out.status.success(), "start-up should have failed");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

pub fn into_json(r: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> (u16, Value) {
    let mut resp = r.expect("HTTP request failed at the transport level");
    let status = resp.status().as_u16();
    let text = resp.body_mut().read_to_string().unwrap_or_default();
    let v = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    };
    (status, v)
}

fn wait_for_ports(data: &Path, child: &mut Child) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(text) = std::fs::read_to_string(data.join("ports.json"))
            && let Ok(v) = serde_json::from_str::<Value>(&text)
        {
            return v;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("sluice exited before accepting traffic: {status}");
        }
        assert!(
            Instant::now() < deadline,
            "sluice did not write ports.json within 30 s"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Decodes a message's base64 payload.
pub fn payload(m: &Value) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD
        .decode(m["payload"].as_str().expect("payload"))
        .expect("base64")
}
