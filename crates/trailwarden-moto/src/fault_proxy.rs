//! A loopback HTTP proxy in front of moto that answers matching requests with AWS-shaped
//! errors, and counts every request by service and operation.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use tokio::net::TcpListener;

/// What the proxy knows about a request: enough to match faults and count calls.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestInfo {
    /// Signing name from the SigV4 credential scope (`sts`, `cloudtrail`, `ec2`, `s3`...).
    pub service: String,
    /// Region from the SigV4 credential scope.
    pub region: String,
    /// Access key id from the SigV4 credential scope.
    pub access_key_id: String,
    /// `X-Amz-Target` suffix (JSON protocols) or the `Action` form field (query protocols);
    /// for REST protocols, `METHOD /path`.
    pub operation: String,
    /// The request body, form-decoded when it is a form.
    pub body: String,
    /// The SDK's attempt number (`amz-sdk-request: attempt=N`); 1 when absent.
    pub attempt: u32,
    /// The URI path.
    pub path: String,
}

/// Identifies a fault added to a proxy, to count its hits or remove it; stays valid when
/// other faults are added before it or removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FaultId(usize);

/// A rule: requests that match every given field get this answer instead of moto's: an
/// AWS-shaped error, or (with `body`) a canned reply standing in for an operation moto lacks.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Fault {
    pub service: Option<String>,
    pub operation: Option<String>,
    pub region: Option<String>,
    pub body_contains: Option<String>,
    #[serde(default)]
    pub path_contains: Option<String>,
    /// How many matching requests to answer; `None` is every one.
    pub times: Option<u32>,
    pub status: u16,
    pub code: String,
    pub message: String,
    /// A canned JSON reply instead of an error (status 200 with this body).
    #[serde(default)]
    pub body: Option<String>,
}

impl Fault {
    /// An error `code` with HTTP `status`, shaped for whichever protocol the request speaks.
    pub fn error(status: u16, code: &str, message: &str) -> Self {
        Self {
            service: None,
            operation: None,
            region: None,
            body_contains: None,
            path_contains: None,
            times: None,
            status,
            code: code.to_owned(),
            message: message.to_owned(),
            body: None,
        }
    }

    /// A canned JSON answer for an operation the emulator does not implement (a fake, the
    /// way tests stand in for APIs moto lacks).
    pub fn reply(json: &str) -> Self {
        Self {
            body: Some(json.to_owned()),
            ..Self::error(200, "", "")
        }
    }

    pub fn path_contains(mut self, text: &str) -> Self {
        self.path_contains = Some(text.to_owned());
        self
    }

    /// Real AWS's answer when the caller may not assume a role.
    pub fn deny_assume_role(account_id: &str) -> Self {
        Self::error(
            403,
            "AccessDenied",
            &format!(
                "User: arn:aws:iam::123456789012:user/operator is not authorized to perform: sts:AssumeRole on resource: arn:aws:iam::{account_id}:role/*"
            ),
        )
        .service("sts")
        .operation("AssumeRole")
        .body_contains(&format!("arn:aws:iam::{account_id}:role/"))
    }

    /// Real AWS's answer when a call is throttled.
    pub fn throttle() -> Self {
        Self::error(400, "ThrottlingException", "Rate exceeded")
    }

    pub fn service(mut self, service: &str) -> Self {
        self.service = Some(service.to_owned());
        self
    }
    pub fn operation(mut self, operation: &str) -> Self {
        self.operation = Some(operation.to_owned());
        self
    }
    pub fn region(mut self, region: &str) -> Self {
        self.region = Some(region.to_owned());
        self
    }
    pub fn body_contains(mut self, text: &str) -> Self {
        self.body_contains = Some(text.to_owned());
        self
    }
    pub fn times(mut self, times: u32) -> Self {
        self.times = Some(times);
        self
    }

    fn matches(&self, info: &RequestInfo) -> bool {
        let eq = |want: &Option<String>, have: &str| want.as_deref().is_none_or(|w| w == have);
        self.path_contains
            .as_deref()
            .is_none_or(|p| info.path.contains(p))
            && eq(&self.service, &info.service)
            && eq(&self.operation, &info.operation)
            && eq(&self.region, &info.region)
            && self
                .body_contains
                .as_deref()
                .is_none_or(|text| info.body.contains(text))
            && self.times != Some(0)
    }

    fn response(&self, info: &RequestInfo, is_json: bool) -> Response<Full<Bytes>> {
        if let Some(body) = &self.body {
            let mut response = Response::new(Full::new(Bytes::from(body.clone())));
            *response.status_mut() = StatusCode::from_u16(self.status).unwrap_or(StatusCode::OK);
            response
                .headers_mut()
                .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            return response;
        }
        if rpc_v2_operation(&info.path).is_some() {
            // Smithy RPC v2 CBOR: the error is a CBOR map, as AWS answers it.
            let mut body = Vec::new();
            let error = serde_json::json!({"__type": self.code, "message": self.message});
            // Writing into a Vec cannot fail.
            let _ = ciborium::into_writer(&error, &mut body);
            let mut response = Response::new(Full::new(Bytes::from(body)));
            *response.status_mut() =
                StatusCode::from_u16(self.status).unwrap_or(StatusCode::BAD_REQUEST);
            let headers = response.headers_mut();
            headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/cbor"));
            headers.insert("smithy-protocol", HeaderValue::from_static("rpc-v2-cbor"));
            return response;
        }
        let (content_type, body) = if is_json {
            (
                "application/x-amz-json-1.1",
                format!(
                    r#"{{"__type":"{}","message":"{}"}}"#,
                    self.code,
                    self.message.replace('"', "'")
                ),
            )
        } else if info.service == "ec2" {
            (
                "text/xml",
                format!(
                    "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Errors><Error><Code>{}</Code><Message>{}</Message></Error></Errors><RequestID>fault-proxy</RequestID></Response>",
                    self.code,
                    xml_escape(&self.message)
                ),
            )
        } else if info.service == "s3" {
            (
                "application/xml",
                format!(
                    "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>{}</Code><Message>{}</Message><RequestId>fault-proxy</RequestId></Error>",
                    self.code,
                    xml_escape(&self.message)
                ),
            )
        } else {
            (
                "text/xml",
                format!(
                    "<ErrorResponse><Error><Type>Sender</Type><Code>{}</Code><Message>{}</Message></Error><RequestId>fault-proxy</RequestId></ErrorResponse>",
                    self.code,
                    xml_escape(&self.message)
                ),
            )
        };
        let mut response = Response::new(Full::new(Bytes::from(body)));
        *response.status_mut() =
            StatusCode::from_u16(self.status).unwrap_or(StatusCode::BAD_REQUEST);
        response
            .headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
        if let Ok(value) = HeaderValue::from_str(&self.code) {
            response.headers_mut().insert("x-amzn-errortype", value);
        }
        response
    }
}

/// Signing names of services that speak restJson1 (no X-Amz-Target, JSON errors).
const REST_JSON_SERVICES: &[&str] = &[
    "guardduty",
    "lambda",
    "securityhub",
    "macie2",
    "access-analyzer",
];

/// One request the proxy answered, for observers (the lab's CloudTrail emulation).
#[derive(Debug, Clone)]
pub struct Exchange {
    pub request: RequestInfo,
    pub method: String,
    pub query: Option<String>,
    pub user_agent: Option<String>,
    /// HTTP status of the answer (an injected fault's, or moto's).
    pub status: u16,
    pub response: Bytes,
}

/// Called with every exchange after it was answered; must not block.
pub type Observer = Arc<dyn Fn(Exchange) + Send + Sync>;

#[derive(Default)]
struct Observers(Vec<Observer>);

impl std::fmt::Debug for Observers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} observer(s)", self.0.len())
    }
}

#[derive(Debug, Default)]
struct State {
    observers: Observers,
    /// In precedence order, each with its id.
    faults: Vec<(FaultId, Fault)>,
    /// Requests each fault answered, by id (kept after the fault is removed).
    hits: BTreeMap<usize, u64>,
    next_fault: usize,
    calls: BTreeMap<(String, String), u64>,
    requests: BTreeMap<(String, String), u64>,
    statuses: BTreeMap<u16, u64>,
}

impl State {
    fn new_fault_id(&mut self) -> FaultId {
        self.next_fault += 1;
        FaultId(self.next_fault)
    }

    fn insert_first(&mut self, fault: Fault) -> FaultId {
        let id = self.new_fault_id();
        self.faults.insert(0, (id, fault));
        id
    }
}

/// The proxy; it stops when the runtime that started it shuts down.
#[derive(Debug, Clone)]
pub struct FaultProxy {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
}

impl FaultProxy {
    /// Listens on a free loopback port and forwards to `upstream` (`http://127.0.0.1:PORT`).
    pub async fn start(upstream: &str) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(Mutex::new(State::default()));
        let upstream: hyper::Uri = upstream
            .parse()
            .map_err(|e| std::io::Error::other(format!("bad upstream {upstream}: {e}")))?;
        let client: Client<HttpConnector, Full<Bytes>> =
            Client::builder(TokioExecutor::new()).build_http();
        let proxy_state = state.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let state = proxy_state.clone();
                let client = client.clone();
                let upstream = upstream.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req| {
                        handle(req, state.clone(), client.clone(), upstream.clone())
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Ok(Self { addr, state })
    }

    /// `http://127.0.0.1:<port>`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Adds an observer of every answered request.
    pub fn observe(&self, observer: Observer) {
        self.state
            .lock()
            .expect("fault proxy state")
            .observers
            .0
            .push(observer);
    }

    pub fn add(&self, fault: Fault) -> FaultId {
        let mut state = self.state.lock().expect("fault proxy state");
        let id = state.new_fault_id();
        state.faults.push((id, fault));
        id
    }

    /// Adds a fault that takes precedence over every fault added before it.
    pub fn add_first(&self, fault: Fault) -> FaultId {
        self.state
            .lock()
            .expect("fault proxy state")
            .insert_first(fault)
    }

    /// Removes one fault: the requests it matched reach moto again (its hits are kept).
    pub fn remove(&self, id: FaultId) {
        self.state
            .lock()
            .expect("fault proxy state")
            .faults
            .retain(|(f, _)| *f != id);
    }

    /// Removes every fault (counts of calls are kept).
    pub fn clear_faults(&self) {
        self.state.lock().expect("fault proxy state").faults.clear();
    }

    /// How many requests the fault answered.
    pub fn hits(&self, id: FaultId) -> u64 {
        self.state
            .lock()
            .expect("fault proxy state")
            .hits
            .get(&id.0)
            .copied()
            .unwrap_or(0)
    }

    /// Calls made so far (first attempts only: what the code asked for, not the SDK's
    /// retries), by (service, operation).
    pub fn calls(&self) -> BTreeMap<(String, String), u64> {
        self.state.lock().expect("fault proxy state").calls.clone()
    }

    /// Calls made so far to one operation of one service (first attempts only).
    pub fn calls_to(&self, service: &str, operation: &str) -> u64 {
        let key = (service.to_owned(), operation.to_owned());
        let state = self.state.lock().expect("fault proxy state");
        state.calls.get(&key).copied().unwrap_or(0)
    }

    /// HTTP requests so far to one operation of one service, retries included.
    pub fn requests_to(&self, service: &str, operation: &str) -> u64 {
        let key = (service.to_owned(), operation.to_owned());
        let state = self.state.lock().expect("fault proxy state");
        state.requests.get(&key).copied().unwrap_or(0)
    }

    /// HTTP statuses of the answers that came from moto (502: moto could not be reached).
    pub fn statuses(&self) -> BTreeMap<u16, u64> {
        self.state
            .lock()
            .expect("fault proxy state")
            .statuses
            .clone()
    }

    pub fn reset_calls(&self) {
        let mut state = self.state.lock().expect("fault proxy state");
        state.calls.clear();
        state.requests.clear();
        state.statuses.clear();
    }
}

async fn handle(
    req: Request<Incoming>,
    state: Arc<Mutex<State>>,
    client: Client<HttpConnector, Full<Bytes>>,
    upstream: hyper::Uri,
) -> Result<Response<Full<Bytes>>, hyper::Error> {
    if req.uri().path() == CALLS_PATH {
        return Ok(calls_report(&state));
    }
    if req.uri().path() == FAULTS_PATH && req.method() == hyper::Method::POST {
        let body = req.into_body().collect().await?.to_bytes();
        let (status, text) = match serde_json::from_slice::<Fault>(&body) {
            Ok(fault) => {
                // Added last wins: a later fake overrides an earlier default.
                state.lock().expect("fault proxy state").insert_first(fault);
                (StatusCode::OK, "added".to_owned())
            }
            Err(e) => (StatusCode::BAD_REQUEST, format!("not a fault: {e}")),
        };
        let mut response = Response::new(Full::new(Bytes::from(text)));
        *response.status_mut() = status;
        return Ok(response);
    }
    let (mut parts, body) = req.into_parts();
    let body = body.collect().await?.to_bytes();
    let info = describe(&parts, &body);
    let is_json = parts.headers.contains_key("x-amz-target")
        || REST_JSON_SERVICES.contains(&info.service.as_str());

    let injected = {
        let mut state = state.lock().expect("fault proxy state");
        let key = (info.service.clone(), info.operation.clone());
        let uncounted = parts
            .headers
            .get("user-agent")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ua| ua.contains(UNCOUNTED_AGENT));
        if uncounted {
            // The lab's own traffic (attacks) is not trailwarden's calls.
        } else if info.attempt <= 1 {
            *state.calls.entry(key.clone()).or_default() += 1;
        }
        if !uncounted {
            *state.requests.entry(key).or_default() += 1;
        }
        let state = &mut *state;
        state
            .faults
            .iter_mut()
            .find(|(_, fault)| fault.matches(&info))
            .map(|(id, fault)| {
                *state.hits.entry(id.0).or_default() += 1;
                if let Some(times) = fault.times.as_mut() {
                    *times -= 1;
                }
                fault.response(&info, is_json)
            })
    };
    let method = parts.method.to_string();
    let query = parts.uri.query().map(str::to_owned);
    let user_agent = parts
        .headers
        .get("user-agent")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let notify = |status: u16, response: &Bytes| {
        let observers: Vec<Observer> = state.lock().expect("fault proxy state").observers.0.clone();
        for observer in observers {
            observer(Exchange {
                request: info.clone(),
                method: method.clone(),
                query: query.clone(),
                user_agent: user_agent.clone(),
                status,
                response: response.clone(),
            });
        }
    };
    if let Some(response) = injected {
        let (parts, body) = response.into_parts();
        let Ok(collected) = body.collect().await;
        let body = collected.to_bytes();
        notify(parts.status.as_u16(), &body);
        return Ok(Response::from_parts(parts, Full::new(body)));
    }

    let path_and_query = parts
        .uri
        .path_and_query()
        .map(|pq| pq.as_str().to_owned())
        .unwrap_or_else(|| "/".to_owned());
    let mut uri = upstream.into_parts();
    uri.path_and_query = path_and_query.parse().ok();
    parts.uri = hyper::Uri::from_parts(uri).expect("upstream uri with a path");
    let forwarded = Request::from_parts(parts, Full::new(body));
    match client.request(forwarded).await {
        Ok(response) => {
            *state
                .lock()
                .expect("fault proxy state")
                .statuses
                .entry(response.status().as_u16())
                .or_default() += 1;
            let (mut parts, body) = response.into_parts();
            let body = fix_moto_quirks(body.collect().await?.to_bytes());
            parts.headers.remove(hyper::header::CONTENT_LENGTH);
            notify(parts.status.as_u16(), &body);
            Ok(Response::from_parts(parts, Full::new(body)))
        }
        Err(e) => {
            *state
                .lock()
                .expect("fault proxy state")
                .statuses
                .entry(502)
                .or_default() += 1;
            let mut response = Response::new(Full::new(Bytes::from(format!(
                "fault proxy: upstream unreachable: {e}"
            ))));
            *response.status_mut() = StatusCode::BAD_GATEWAY;
            Ok(response)
        }
    }
}

/// Requests whose User-Agent carries this (`app/trailwarden-lab`) are forwarded, faulted and
/// observed but not counted: they are the lab's, not the tool's under test.
pub const UNCOUNTED_AGENT: &str = "app/trailwarden-lab";

/// Where the proxy reports its call counts, for tools outside the process (benchmarks).
pub const CALLS_PATH: &str = "/__trailwarden_lab/calls";
/// Where another process adds a fault (POST a JSON [`Fault`]); it takes precedence.
pub const FAULTS_PATH: &str = "/__trailwarden_lab/faults";

/// Adds a fault to a proxy served by another process (see [`FAULTS_PATH`]).
pub fn post_fault(endpoint: &str, fault: &Fault) -> std::io::Result<()> {
    use std::io::{Read, Write};
    let addr = endpoint
        .strip_prefix("http://")
        .ok_or_else(|| std::io::Error::other(format!("not an http endpoint: {endpoint}")))?;
    let body = serde_json::to_string(fault).map_err(std::io::Error::other)?;
    let mut stream = std::net::TcpStream::connect(addr)?;
    write!(
        stream,
        "POST {FAULTS_PATH} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    let mut reply = String::new();
    stream.read_to_string(&mut reply)?;
    if reply.starts_with("HTTP/1.1 200") {
        Ok(())
    } else {
        Err(std::io::Error::other(format!(
            "the proxy refused the fault: {}",
            reply.lines().last().unwrap_or("")
        )))
    }
}

fn calls_report(state: &Mutex<State>) -> Response<Full<Bytes>> {
    let state = state.lock().expect("fault proxy state");
    let rows: Vec<String> = state
        .calls
        .iter()
        .map(|((service, op), n)| {
            let requests = state
                .requests
                .get(&(service.clone(), op.clone()))
                .copied()
                .unwrap_or(0);
            format!(
                "{{\"service\":\"{}\",\"operation\":\"{}\",\"calls\":{n},\"requests\":{requests}}}",
                service.replace('"', ""),
                op.replace('"', "")
            )
        })
        .collect();
    let mut response = Response::new(Full::new(Bytes::from(format!("[{}]", rows.join(",")))));
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

fn describe(parts: &hyper::http::request::Parts, body: &[u8]) -> RequestInfo {
    let mut info = RequestInfo {
        path: parts.uri.path().to_owned(),
        ..RequestInfo::default()
    };
    // Authorization: AWS4-HMAC-SHA256 Credential=AKID/20240101/us-east-1/sts/aws4_request, ...
    if let Some(scope) = parts
        .headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|auth| auth.split("Credential=").nth(1))
        .and_then(|rest| rest.split(',').next())
    {
        let fields: Vec<&str> = scope.split('/').collect();
        if fields.len() >= 4 {
            info.access_key_id = fields[0].to_owned();
            info.region = fields[2].to_owned();
            info.service = fields[3].to_owned();
        }
    }
    info.attempt = parts
        .headers
        .get("amz-sdk-request")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.split(';')
                .find_map(|kv| kv.trim().strip_prefix("attempt="))
        })
        .and_then(|n| n.parse().ok())
        .unwrap_or(1);
    let raw_body = String::from_utf8_lossy(body);
    let is_form = parts
        .headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/x-www-form-urlencoded"));
    let is_cbor = parts
        .headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/cbor"));
    info.body = if is_form {
        form_decode(&raw_body)
    } else if is_cbor {
        cbor_to_json(body)
    } else {
        raw_body.into_owned()
    };
    info.operation = if let Some(target) = parts
        .headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
    {
        target.rsplit('.').next().unwrap_or(target).to_owned()
    } else if let Some(op) = rpc_v2_operation(parts.uri.path()) {
        op.to_owned()
    } else if let Some(action) = is_form
        .then(|| {
            info.body
                .split('&')
                .find_map(|kv| kv.strip_prefix("Action="))
        })
        .flatten()
    {
        action.to_owned()
    } else {
        rest_operation(
            &info.service,
            parts.method.as_str(),
            parts.uri.path(),
            parts.uri.query(),
        )
    };
    info
}

/// A CBOR request body (Smithy RPC v2) as JSON text, so faults and recorders read it like
/// a JSON protocol's; empty when it is not CBOR.
fn cbor_to_json(body: &[u8]) -> String {
    ciborium::from_reader::<ciborium::Value, _>(body)
        .ok()
        .and_then(|v| serde_json::to_string(&v).ok())
        .unwrap_or_default()
}

/// The operation of a Smithy RPC v2 request (`/service/<Service>/operation/<Operation>`,
/// CloudWatch's protocol in the Rust SDK).
fn rpc_v2_operation(path: &str) -> Option<&str> {
    let rest = path.strip_prefix("/service/")?;
    let (_, op) = rest.split_once("/operation/")?;
    (!op.is_empty() && !op.contains('/')).then_some(op)
}

/// Names the REST operations trailwarden makes (S3 bucket reads, GuardDuty), so call counts
/// and least-privilege checks can speak of operations; anything else is `METHOD /path`.
fn rest_operation(service: &str, method: &str, path: &str, query: Option<&str>) -> String {
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let subresource = query
        .unwrap_or("")
        .split('&')
        .map(|kv| kv.split('=').next().unwrap_or(""))
        .find(|k| !k.is_empty() && !k.starts_with("x-id"));
    let listing = query.unwrap_or("").split('&').any(|kv| kv == "list-type=2");
    let known = match (service, method, segments.as_slice(), subresource) {
        ("s3", "GET", [_bucket], _) if listing => Some("ListObjectsV2"),
        ("s3", "GET", [_bucket, _key, ..], _) => Some("GetObject"),
        ("s3", "PUT", [_bucket, _key, ..], _) => Some("PutObject"),
        ("s3", "GET", [_bucket], Some(sub)) => match sub {
            "location" => Some("GetBucketLocation"),
            "policy" => Some("GetBucketPolicy"),
            "lifecycle" => Some("GetBucketLifecycleConfiguration"),
            "versioning" => Some("GetBucketVersioning"),
            "encryption" => Some("GetBucketEncryption"),
            "logging" => Some("GetBucketLogging"),
            "publicAccessBlock" => Some("GetPublicAccessBlock"),
            "notification" => Some("GetBucketNotificationConfiguration"),
            "replication" => Some("GetBucketReplication"),
            "acl" => Some("GetBucketAcl"),
            "object-lock" => Some("GetObjectLockConfiguration"),
            _ => None,
        },
        ("s3", "PUT", [_bucket], Some(sub)) => match sub {
            "policy" => Some("PutBucketPolicy"),
            "lifecycle" => Some("PutBucketLifecycleConfiguration"),
            "versioning" => Some("PutBucketVersioning"),
            "encryption" => Some("PutBucketEncryption"),
            "logging" => Some("PutBucketLogging"),
            "publicAccessBlock" => Some("PutPublicAccessBlock"),
            "notification" => Some("PutBucketNotificationConfiguration"),
            "acl" => Some("PutBucketAcl"),
            _ => None,
        },
        ("s3", "PUT", [_bucket], None) => Some("CreateBucket"),
        ("s3", "HEAD", [_bucket], None) => Some("HeadBucket"),
        ("s3", "HEAD", [_bucket, _key, ..], _) => Some("HeadObject"),
        ("s3", "DELETE", [_bucket], Some("lifecycle")) => Some("DeleteBucketLifecycle"),
        ("guardduty", "POST", ["detector"], _) => Some("CreateDetector"),
        ("guardduty", "POST", ["detector", _], _) => Some("UpdateDetector"),
        ("guardduty", "DELETE", ["detector", _, "filter", _], _) => Some("DeleteFilter"),
        ("guardduty", "POST", ["detector", _, "filter"], _) => Some("CreateFilter"),
        ("guardduty", "DELETE", ["detector", _], _) => Some("DeleteDetector"),
        ("guardduty", "POST", ["detector", _, "ipset"], _) => Some("CreateIPSet"),
        ("guardduty", "POST", ["detector", _, "ipset", _], _) => Some("UpdateIPSet"),
        ("guardduty", "GET", ["detector"], _) => Some("ListDetectors"),
        ("guardduty", "GET", ["detector", _], _) => Some("GetDetector"),
        ("guardduty", "GET", ["detector", _, "filter"], _) => Some("ListFilters"),
        ("guardduty", "GET", ["detector", _, "filter", _], _) => Some("GetFilter"),
        ("guardduty", "GET", ["detector", _, "ipset"], _) => Some("ListIPSets"),
        ("guardduty", "GET", ["detector", _, "ipset", _], _) => Some("GetIPSet"),
        _ => None,
    };
    match known {
        Some(op) => op.to_owned(),
        None => format!("{method} {path}"),
    }
}

/// Response bodies moto 5.2 gets wrong in a way the Rust SDK rejects (real AWS answers
/// correctly): (what moto writes, what AWS writes).
const MOTO_ROOT_ELEMENT_FIXES: &[(&str, &str)] = &[
    // GetBucketVersioning: AWS's root element is VersioningConfiguration.
    ("GetBucketVersioningResponse", "VersioningConfiguration"),
    // GetBucketNotificationConfiguration: AWS's root element is NotificationConfiguration.
    ("GetBucketNotificationResponse", "NotificationConfiguration"),
];

fn fix_moto_quirks(body: Bytes) -> Bytes {
    let Ok(text) = std::str::from_utf8(&body) else {
        return body;
    };
    for (wrong, right) in MOTO_ROOT_ELEMENT_FIXES {
        if text.contains(&format!("<{wrong} ")) || text.contains(&format!("<{wrong}>")) {
            return Bytes::from(
                text.replace(&format!("<{wrong}"), &format!("<{right}"))
                    .replace(&format!("</{wrong}>"), &format!("</{right}>")),
            );
        }
    }
    body
}

/// Decodes `application/x-www-form-urlencoded` text, keeping `&` between fields.
fn form_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(b) => {
                        out.push(b);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn xml_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rpc_v2_requests_are_named_by_their_operation() {
        assert_eq!(
            rpc_v2_operation("/service/GraniteServiceVersion20100801/operation/PutMetricAlarm"),
            Some("PutMetricAlarm")
        );
        assert_eq!(rpc_v2_operation("/service/X/operation/"), None);
        assert_eq!(rpc_v2_operation("/bucket/service/x"), None);
        let mut body = Vec::new();
        let request = serde_json::json!({"AlarmNames": ["cloudtrail-changes"]});
        ciborium::into_writer(&request, &mut body).unwrap();
        assert_eq!(cbor_to_json(&body), request.to_string());
        assert_eq!(cbor_to_json(b"\xff\x00"), "");
    }

    #[test]
    fn moto_versioning_root_element_is_fixed() {
        let moto = Bytes::from_static(b"<?xml version=\"1.0\"?><GetBucketVersioningResponse xmlns=\"x\"><Status>Enabled</Status></GetBucketVersioningResponse>");
        let fixed = fix_moto_quirks(moto);
        assert_eq!(
            std::str::from_utf8(&fixed).unwrap(),
            "<?xml version=\"1.0\"?><VersioningConfiguration xmlns=\"x\"><Status>Enabled</Status></VersioningConfiguration>"
        );
        let other = Bytes::from_static(b"{\"a\":1}");
        assert_eq!(fix_moto_quirks(other.clone()), other);
    }

    #[test]
    fn rest_operations_are_named() {
        assert_eq!(
            rest_operation("s3", "GET", "/logs/", Some("policy")),
            "GetBucketPolicy"
        );
        assert_eq!(
            rest_operation("s3", "GET", "/logs", Some("x-id=GetObject")),
            "GET /logs"
        );
        assert_eq!(
            rest_operation("guardduty", "GET", "/detector", None),
            "ListDetectors"
        );
        assert_eq!(
            rest_operation("guardduty", "GET", "/detector/abc", None),
            "GetDetector"
        );
        assert_eq!(rest_operation("s3", "PUT", "/logs/key", None), "PutObject");
        assert_eq!(rest_operation("s3", "HEAD", "/logs/", None), "HeadBucket");
        assert_eq!(rest_operation("s3", "GET", "/logs/a/b", None), "GetObject");
        assert_eq!(
            rest_operation("s3", "GET", "/logs", Some("list-type=2&prefix=AWSLogs")),
            "ListObjectsV2"
        );
        assert_eq!(
            rest_operation("s3", "POST", "/logs/key", Some("uploads")),
            "POST /logs/key"
        );
    }

    #[test]
    fn form_decoding() {
        assert_eq!(
            form_decode("Action=AssumeRole&RoleArn=arn%3Aaws%3Aiam%3A%3A1%3Arole%2Fx&a=b+c"),
            "Action=AssumeRole&RoleArn=arn:aws:iam::1:role/x&a=b c"
        );
        assert_eq!(form_decode("bad%zz%4"), "bad%zz%4");
    }

    #[test]
    fn faults_match_on_every_given_field_and_run_out() {
        let info = RequestInfo {
            service: "sts".into(),
            region: "us-east-1".into(),
            operation: "AssumeRole".into(),
            body: "RoleArn=arn:aws:iam::222222222222:role/Audit".into(),
            ..Default::default()
        };
        assert!(Fault::deny_assume_role("222222222222").matches(&info));
        assert!(!Fault::deny_assume_role("333333333333").matches(&info));
        assert!(!Fault::throttle().region("eu-west-1").matches(&info));
        let mut once = Fault::throttle().times(1);
        assert!(once.matches(&info));
        once.times = Some(0);
        assert!(!once.matches(&info));
    }
}
