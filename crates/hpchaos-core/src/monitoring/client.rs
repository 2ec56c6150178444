//! HTTP to the monitoring: one `reqwest` client for Prometheus, Alertmanager,
//! the Pushgateway and remote write, with requests to Amazon Managed
//! Prometheus signed by AWS Signature Version 4 (service `aps`, credentials
//! from the standard chain or a named profile, resolved once per endpoint).

use std::collections::HashMap;
use std::time::SystemTime;

use aws_credential_types::provider::ProvideCredentials;
use tokio::sync::Mutex;

use crate::profile::{Endpoint, SigV4};

/// Why a request to the monitoring failed: said in the journal and the
/// report with the endpoint's URL.
#[derive(Debug, thiserror::Error)]
pub enum MonitoringError {
    #[error("{url}: {message}")]
    Request { url: String, message: String },
    #[error("{url}: HTTP {status}: {body}")]
    Status {
        url: String,
        status: u16,
        body: String,
    },
    #[error("AWS credentials for SigV4 (region {region}): {message}")]
    Credentials { region: String, message: String },
    /// An answer that could not be used as one.
    #[error(transparent)]
    Answer(#[from] super::expect::AnswerError),
    /// The profile names no endpoint of this kind (`prometheus`,
    /// `alertmanager`).
    #[error("the profile has no monitoring.{0}")]
    NotConfigured(&'static str),
}

/// A response: status and body.
pub struct Answer {
    pub status: u16,
    pub body: Vec<u8>,
}

/// Talks to the monitoring's endpoints.
pub struct Client {
    http: reqwest::Client,
    /// Credentials per (region, profile), resolved on first use.
    credentials: Mutex<HashMap<(String, Option<String>), aws_credential_types::Credentials>>,
}

impl Default for Client {
    fn default() -> Self {
        Client::new()
    }
}

impl Client {
    pub fn new() -> Client {
        Client {
            http: reqwest::Client::new(),
            credentials: Mutex::new(HashMap::new()),
        }
    }

    /// `GET endpoint.url + path ? query`; a status other than 2xx is an
    /// error carrying the body's start.
    pub async fn get(
        &self,
        endpoint: &Endpoint,
        path: &str,
        query: &[(&str, &str)],
    ) -> Result<Vec<u8>, MonitoringError> {
        let answer = self
            .send(endpoint, reqwest::Method::GET, path, query, Vec::new(), &[])
            .await?;
        Ok(answer.body)
    }

    /// Sends one request, signed when the endpoint says `sigv4`, within the
    /// endpoint's timeout.
    pub async fn send(
        &self,
        endpoint: &Endpoint,
        method: reqwest::Method,
        path: &str,
        query: &[(&str, &str)],
        body: Vec<u8>,
        headers: &[(&str, &str)],
    ) -> Result<Answer, MonitoringError> {
        let base = format!("{}{path}", endpoint.url.trim_end_matches('/'));
        let parsed = if query.is_empty() {
            reqwest::Url::parse(&base)
        } else {
            reqwest::Url::parse_with_params(&base, query)
        };
        let url = parsed.map_err(|e| MonitoringError::Request {
            url: base.clone(),
            message: format!("not a URL: {e}"),
        })?;
        // Errors name the endpoint and path, not the query (whose times
        // change each poll): the same failure reads the same.
        let shown = base.clone();
        let failed = |message: String| MonitoringError::Request {
            url: shown.clone(),
            message,
        };
        let mut request = self
            .http
            .request(method.clone(), url.clone())
            .timeout(endpoint.timeout.as_std());
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if let Some(sigv4) = &endpoint.sigv4 {
            for (name, value) in self.sign(sigv4, &method, &url, headers, &body).await? {
                request = request.header(name, value);
            }
        }
        let response = request
            .body(body)
            .send()
            .await
            .map_err(|e| failed(error_chain(&e.without_url())))?;
        let status = response.status().as_u16();
        let body = response
            .bytes()
            .await
            .map_err(|e| failed(error_chain(&e.without_url())))?
            .to_vec();
        if !(200..300).contains(&status) {
            let text = String::from_utf8_lossy(&body);
            return Err(MonitoringError::Status {
                url: shown,
                status,
                body: text.trim().chars().take(300).collect(),
            });
        }
        Ok(Answer { status, body })
    }

    /// The SigV4 headers (`authorization`, `x-amz-date`, and
    /// `x-amz-security-token` for temporary credentials) for one request.
    async fn sign(
        &self,
        sigv4: &SigV4,
        method: &reqwest::Method,
        url: &reqwest::Url,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<Vec<(String, String)>, MonitoringError> {
        use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
        let credentials = self.credentials(sigv4).await?;
        let identity = credentials.into();
        let params = aws_sigv4::sign::v4::SigningParams::builder()
            .identity(&identity)
            .region(&sigv4.region)
            .name(&sigv4.service)
            .time(wall_clock())
            .settings(SigningSettings::default())
            .build()
            .map_err(|e| MonitoringError::Credentials {
                region: sigv4.region.clone(),
                message: e.to_string(),
            })?;
        let host = url.host_str().unwrap_or_default().to_owned();
        let host = match url.port() {
            Some(port) => format!("{host}:{port}"),
            None => host,
        };
        let mut all: Vec<(&str, &str)> = vec![("host", host.as_str())];
        all.extend_from_slice(headers);
        let signable = SignableRequest::new(
            method.as_str(),
            url.as_str(),
            all.into_iter(),
            SignableBody::Bytes(body),
        )
        .map_err(|e| MonitoringError::Credentials {
            region: sigv4.region.clone(),
            message: e.to_string(),
        })?;
        let (instructions, _signature) = sign(signable, &params.into())
            .map_err(|e| MonitoringError::Credentials {
                region: sigv4.region.clone(),
                message: e.to_string(),
            })?
            .into_parts();
        let (headers, _params) = instructions.into_parts();
        Ok(headers
            .into_iter()
            .map(|h| (h.name().to_owned(), h.value().to_owned()))
            .collect())
    }

    async fn credentials(
        &self,
        sigv4: &SigV4,
    ) -> Result<aws_credential_types::Credentials, MonitoringError> {
        let key = (sigv4.region.clone(), sigv4.aws_profile.clone());
        let mut cache = self.credentials.lock().await;
        if let Some(found) = cache.get(&key)
            && found
                .expiry()
                .is_none_or(|at| at > wall_clock() + std::time::Duration::from_secs(60))
        {
            return Ok(found.clone());
        }
        let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new(sigv4.region.clone()));
        if let Some(profile) = &sigv4.aws_profile {
            loader = loader.profile_name(profile);
        }
        let config = loader.load().await;
        let provider =
            config
                .credentials_provider()
                .ok_or_else(|| MonitoringError::Credentials {
                    region: sigv4.region.clone(),
                    message: "no credential provider in the chain".to_owned(),
                })?;
        let credentials =
            provider
                .provide_credentials()
                .await
                .map_err(|e| MonitoringError::Credentials {
                    region: sigv4.region.clone(),
                    message: error_chain(&e),
                })?;
        cache.insert(key, credentials.clone());
        Ok(credentials)
    }
}

/// An error and its causes, joined: reqwest's top-level message alone
/// ("error sending request") does not say what went wrong.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// The wall clock as the signer and the credential cache want it, read
/// through [`crate::clock::Clock`] like every other wall-clock time.
fn wall_clock() -> SystemTime {
    SystemTime::from(crate::clock::Clock::now(&crate::clock::SystemClock))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::duration::Duration;

    /// A signed request carries SigV4's headers for service `aps`, with
    /// static credentials from the environment (the chain's first link).
    #[tokio::test]
    async fn sigv4_signs_for_aps() {
        // SAFETY of the test: nextest runs each test in its own process.
        unsafe {
            std::env::set_var("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE");
            std::env::set_var(
                "AWS_SECRET_ACCESS_KEY",
                "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            );
            std::env::set_var("AWS_SESSION_TOKEN", "token");
        }
        let client = Client::new();
        let sigv4 = SigV4 {
            region: "us-west-2".into(),
            service: "aps".into(),
            aws_profile: None,
        };
        let url = reqwest::Url::parse(
            "https://aps-workspaces.us-west-2.amazonaws.com/workspaces/ws-1/api/v1/query_range?query=up&start=1&end=2&step=1",
        )
        .unwrap();
        let headers = client
            .sign(&sigv4, &reqwest::Method::GET, &url, &[], b"")
            .await
            .unwrap();
        let auth = headers
            .iter()
            .find(|(n, _)| n == "authorization")
            .map(|(_, v)| v.clone())
            .unwrap();
        assert!(
            auth.starts_with("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/"),
            "{auth}"
        );
        assert!(auth.contains("/us-west-2/aps/aws4_request"), "{auth}");
        assert!(headers.iter().any(|(n, _)| n == "x-amz-date"));
        assert!(
            headers
                .iter()
                .any(|(n, v)| n == "x-amz-security-token" && v == "token")
        );
        let _ = Endpoint {
            url: String::new(),
            sigv4: None,
            timeout: Duration::from_secs(1),
        };
    }
}
