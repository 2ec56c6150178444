//! Just enough HTTP/1.1 for the SageMaker SDK to talk to the lab: request
//! line, headers and a `Content-Length` body, keep-alive, and responses
//! with a length. Anything else gets a 400 and the connection closes.

use std::collections::HashMap;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// Requests larger than this are refused (the API's are a few KiB).
const MAX_BODY: usize = 1 << 20;

pub struct Request {
    pub method: String,
    /// The request line's target (`/`).
    pub path: String,
    /// Header names lower-cased.
    pub headers: HashMap<String, String>,
    pub body: Vec<u8>,
}

pub struct Response {
    pub status: u16,
    /// Text for JSON and Prometheus; bytes for CBOR.
    pub body: Vec<u8>,
    /// `Content-Type`: [`AMZ_JSON`] for the API, [`PROMETHEUS_TEXT`] for
    /// the exporters.
    pub content_type: &'static str,
}

/// Smithy RPC v2 CBOR (CloudWatch's protocol).
pub const CBOR: &str = "application/cbor";
/// The SageMaker API's JSON protocol.
pub const AMZ_JSON: &str = "application/x-amz-json-1.1";
/// Prometheus's text exposition format, version 0.0.4.
pub const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Serves one connection until the peer closes it or sends nonsense.
pub async fn serve<F>(stream: TcpStream, mut handle: F)
where
    F: FnMut(Request) -> Response,
{
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read);
    loop {
        let request = match read_request(&mut reader).await {
            Ok(Some(request)) => request,
            Ok(None) => return,
            Err(message) => {
                let _ = write_response(
                    &mut write,
                    &Response {
                        status: 400,
                        body: message.into(),
                        content_type: AMZ_JSON,
                    },
                    "0",
                )
                .await;
                return;
            }
        };
        // Unique per request across connections, shaped like AWS's UUIDs.
        let n = NEXT_REQUEST.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let request_id = format!("{:08x}-1ab0-4000-8000-{n:012x}", std::process::id());
        let response = handle(request);
        if write_response(&mut write, &response, &request_id)
            .await
            .is_err()
        {
            return;
        }
    }
}

async fn read_request(
    reader: &mut BufReader<tokio::net::tcp::OwnedReadHalf>,
) -> Result<Option<Request>, String> {
    let mut line = String::new();
    if reader
        .read_line(&mut line)
        .await
        .map_err(|e| e.to_string())?
        == 0
    {
        return Ok(None);
    }
    let mut words = line.split_whitespace();
    let method = words.next().unwrap_or_default().to_owned();
    let path = words.next().unwrap_or("/").to_owned();
    let mut headers = HashMap::new();
    loop {
        let mut header = String::new();
        if reader
            .read_line(&mut header)
            .await
            .map_err(|e| e.to_string())?
            == 0
        {
            return Ok(None);
        }
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            headers.insert(name.trim().to_ascii_lowercase(), value.trim().to_owned());
        }
    }
    let length: usize = headers
        .get("content-length")
        .and_then(|l| l.parse().ok())
        .unwrap_or(0);
    if length > MAX_BODY {
        return Err("request body too large".to_owned());
    }
    let mut body = vec![0; length];
    reader
        .read_exact(&mut body)
        .await
        .map_err(|e| e.to_string())?;
    Ok(Some(Request {
        method,
        path,
        headers,
        body,
    }))
}

/// Requests answered by this lab's API so far.
static NEXT_REQUEST: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

async fn write_response(
    write: &mut tokio::net::tcp::OwnedWriteHalf,
    response: &Response,
    request_id: &str,
) -> std::io::Result<()> {
    let reason = match response.status {
        200 => "OK",
        400 => "Bad Request",
        403 => "Forbidden",
        _ => "Error",
    };
    // Smithy RPC v2 answers say their protocol.
    let protocol = match response.content_type {
        CBOR => "smithy-protocol: rpc-v2-cbor\r\n",
        _ => "",
    };
    let head = format!(
        "HTTP/1.1 {} {reason}\r\nContent-Type: {}\r\nContent-Length: {}\r\nx-amzn-RequestId: {request_id}\r\n{protocol}\r\n",
        response.status,
        response.content_type,
        response.body.len()
    );
    write.write_all(head.as_bytes()).await?;
    write.write_all(&response.body).await?;
    write.flush().await
}
