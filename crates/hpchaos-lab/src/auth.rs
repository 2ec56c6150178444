//! Who may call the lab's API: a request is served only when its SigV4
//! signature is the one the lab's keys give, as AWS checks it. A key the
//! lab does not know is `UnrecognizedClientException`, a wrong secret (or
//! a request changed after signing) `InvalidSignatureException`, a
//! session token past its expiry `ExpiredTokenException`, a signature
//! more than 5 minutes off the lab's clock `InvalidSignatureException`
//! ("Signature expired"), all with AWS's words. The signature is computed
//! again with `aws-sigv4` (the SDK's own signer) over the headers the
//! request says it signed.

use std::path::Path;

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use chrono::{DateTime, NaiveDateTime, Utc};

use super::http::Request;

/// The keys the lab accepts: its long-term key, and session keys it
/// issued (each with its token and expiry).
#[derive(Debug, Clone, Default)]
pub struct Keys {
    pub keys: Vec<Key>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Key {
    pub access_key_id: String,
    pub secret: String,
    pub session_token: Option<String>,
    pub expires: Option<DateTime<Utc>>,
}

/// Why a request is refused: AWS's error type and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    pub status: u16,
    pub kind: &'static str,
    pub message: String,
}

fn refused(status: u16, kind: &'static str, message: impl Into<String>) -> Refused {
    Refused {
        status,
        kind,
        message: message.into(),
    }
}

/// How far a request's time may be from the lab's (AWS: 5 minutes).
const SKEW: chrono::TimeDelta = chrono::TimeDelta::minutes(5);

impl Keys {
    /// The keys in an AWS credentials file (every profile's
    /// `aws_access_key_id`, `aws_secret_access_key`, and
    /// `aws_session_token` with the lab's own `x_hpchaos_expires` RFC 3339
    /// expiry); none when it cannot be read.
    pub fn from_credentials_file(path: &Path) -> Keys {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let mut keys = Vec::new();
        let mut current: Option<Key> = None;
        for line in text.lines().map(str::trim) {
            if line.starts_with('[') {
                keys.extend(current.take());
                current = Some(Key {
                    access_key_id: String::new(),
                    secret: String::new(),
                    session_token: None,
                    expires: None,
                });
                continue;
            }
            let (Some(key), Some((name, value))) = (current.as_mut(), line.split_once('=')) else {
                continue;
            };
            let value = value.trim().to_owned();
            match name.trim() {
                "aws_access_key_id" => key.access_key_id = value,
                "aws_secret_access_key" => key.secret = value,
                "aws_session_token" => key.session_token = Some(value),
                "x_hpchaos_expires" => {
                    key.expires = DateTime::parse_from_rfc3339(&value)
                        .ok()
                        .map(|t| t.to_utc());
                }
                _ => {}
            }
        }
        keys.extend(current);
        keys.retain(|k| !k.access_key_id.is_empty());
        Keys { keys }
    }

    /// Whether `request` (sent to `host`) is signed with one of these keys
    /// at a time within 5 minutes of `now`; else why not, as AWS says it.
    pub fn check(&self, request: &Request, now: DateTime<Utc>) -> Result<(), Refused> {
        let Some(authorization) = request.headers.get("authorization") else {
            return Err(refused(
                403,
                "MissingAuthenticationTokenException",
                "Missing Authentication Token",
            ));
        };
        let Some(parts) = authorization.strip_prefix("AWS4-HMAC-SHA256 ") else {
            return Err(refused(
                400,
                "IncompleteSignatureException",
                "Authorization header requires 'AWS4-HMAC-SHA256' as the algorithm",
            ));
        };
        let field = |name: &str| {
            parts
                .split(',')
                .map(str::trim)
                .find_map(|p| p.strip_prefix(name))
                .unwrap_or_default()
        };
        let credential = field("Credential=");
        let signed_headers = field("SignedHeaders=");
        let signature = field("Signature=");
        let scope: Vec<&str> = credential.split('/').collect();
        let [access_key_id, _date, region, service, "aws4_request"] = scope.as_slice() else {
            return Err(refused(
                400,
                "IncompleteSignatureException",
                format!("Authorization header has a malformed Credential: {credential}"),
            ));
        };
        let Some(key) = self.keys.iter().find(|k| k.access_key_id == *access_key_id) else {
            return Err(refused(
                400,
                "UnrecognizedClientException",
                "The security token included in the request is invalid.",
            ));
        };
        if key.session_token.is_some()
            && request.headers.get("x-amz-security-token") != key.session_token.as_ref()
        {
            return Err(refused(
                400,
                "UnrecognizedClientException",
                "The security token included in the request is invalid.",
            ));
        }
        if key.expires.is_some_and(|at| at <= now) {
            return Err(refused(
                400,
                "ExpiredTokenException",
                "The security token included in the request is expired",
            ));
        }
        let amz_date = request
            .headers
            .get("x-amz-date")
            .map(String::as_str)
            .unwrap_or_default();
        let Ok(signed_at) = NaiveDateTime::parse_from_str(amz_date, "%Y%m%dT%H%M%SZ") else {
            return Err(refused(
                400,
                "IncompleteSignatureException",
                "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.",
            ));
        };
        let signed_at = signed_at.and_utc();
        if (signed_at - now).abs() > SKEW {
            return Err(refused(
                400,
                "InvalidSignatureException",
                format!(
                    "Signature expired: {amz_date} is now earlier than {} ({} - 5 min.)",
                    (now - SKEW).format("%Y%m%dT%H%M%SZ"),
                    now.format("%Y%m%dT%H%M%SZ")
                ),
            ));
        }
        let expected = signature_of(request, key, signed_headers, region, service, signed_at)
            .map_err(|e| refused(400, "InvalidSignatureException", e))?;
        if expected != signature {
            return Err(refused(
                400,
                "InvalidSignatureException",
                "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.",
            ));
        }
        Ok(())
    }
}

/// The signature `key` gives `request` over the headers named in
/// `signed_headers` (`;`-separated), for `region` and `service` at
/// `signed_at`: the SDK's signer, run again. The date and token headers
/// the signer adds itself are not passed in.
pub fn signature_of(
    request: &Request,
    key: &Key,
    signed_headers: &str,
    region: &str,
    service: &str,
    signed_at: DateTime<Utc>,
) -> Result<String, String> {
    let identity = Credentials::new(
        &key.access_key_id,
        &key.secret,
        key.session_token.clone(),
        None,
        "hpchaos-lab",
    )
    .into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name(service)
        .time(signed_at.into())
        .settings(SigningSettings::default())
        .build()
        .map_err(|e| e.to_string())?
        .into();
    let headers: Vec<(&str, &str)> = signed_headers
        .split(';')
        .filter(|h| !matches!(*h, "x-amz-date" | "x-amz-security-token"))
        .filter_map(|h| request.headers.get(h).map(|v| (h, v.as_str())))
        .collect();
    let host = request
        .headers
        .get("host")
        .map(String::as_str)
        .unwrap_or("localhost");
    let uri = format!("http://{host}{}", request.path);
    let signable = SignableRequest::new(
        &request.method,
        uri,
        headers.into_iter(),
        SignableBody::Bytes(&request.body),
    )
    .map_err(|e| e.to_string())?;
    let (_, signature) = sign(signable, &params)
        .map_err(|e| e.to_string())?
        .into_parts();
    Ok(signature)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn lab_key() -> Key {
        Key {
            access_key_id: "AKIDHPCHAOSLAB".into(),
            secret: "s3cret".into(),
            session_token: None,
            expires: None,
        }
    }

    /// A request signed by `key` at `at`, as the SDK signs one.
    pub(crate) fn signed(key: &Key, at: DateTime<Utc>, body: &str) -> Request {
        let mut request = Request {
            method: "POST".into(),
            path: "/".into(),
            headers: [
                ("host".to_owned(), "127.0.0.1:4000".to_owned()),
                (
                    "content-type".to_owned(),
                    "application/x-amz-json-1.1".to_owned(),
                ),
                (
                    "x-amz-target".to_owned(),
                    "SageMaker.DescribeCluster".to_owned(),
                ),
                (
                    "x-amz-date".to_owned(),
                    at.format("%Y%m%dT%H%M%SZ").to_string(),
                ),
            ]
            .into_iter()
            .collect(),
            body: body.as_bytes().to_vec(),
        };
        if let Some(token) = &key.session_token {
            request
                .headers
                .insert("x-amz-security-token".into(), token.clone());
        }
        let mut names = vec!["content-type", "host", "x-amz-date", "x-amz-target"];
        if key.session_token.is_some() {
            names.push("x-amz-security-token");
        }
        let signed_headers = names.join(";");
        let signature =
            signature_of(&request, key, &signed_headers, "us-west-2", "sagemaker", at).unwrap();
        request.headers.insert(
            "authorization".into(),
            format!(
                "AWS4-HMAC-SHA256 Credential={}/{}/us-west-2/sagemaker/aws4_request, SignedHeaders={signed_headers}, Signature={signature}",
                key.access_key_id,
                at.format("%Y%m%d")
            ),
        );
        request
    }

    /// `request` signed again by `key` over its current headers.
    pub(crate) fn resigned(mut request: Request, key: &Key) -> Request {
        let at = NaiveDateTime::parse_from_str(&request.headers["x-amz-date"], "%Y%m%dT%H%M%SZ")
            .unwrap()
            .and_utc();
        let names = "content-type;host;x-amz-date;x-amz-target";
        let signature = signature_of(&request, key, names, "us-west-2", "sagemaker", at).unwrap();
        request.headers.insert(
            "authorization".into(),
            format!(
                "AWS4-HMAC-SHA256 Credential={}/{}/us-west-2/sagemaker/aws4_request, SignedHeaders={names}, Signature={signature}",
                key.access_key_id,
                at.format("%Y%m%d")
            ),
        );
        request
    }

    #[test]
    fn a_request_is_served_only_with_the_labs_keys_as_aws_checks_them() {
        let now = Utc::now();
        let keys = Keys {
            keys: vec![lab_key()],
        };
        assert_eq!(keys.check(&signed(&lab_key(), now, "{}"), now), Ok(()));
        let kind = |r: Result<(), Refused>| r.err().map(|r| r.kind);
        let other = Key {
            access_key_id: "AKIDSOMEONEELSE".into(),
            ..lab_key()
        };
        assert_eq!(
            kind(keys.check(&signed(&other, now, "{}"), now)),
            Some("UnrecognizedClientException")
        );
        let wrong = Key {
            secret: "guess".into(),
            ..lab_key()
        };
        assert_eq!(
            kind(keys.check(&signed(&wrong, now, "{}"), now)),
            Some("InvalidSignatureException")
        );
        // Changed after signing.
        let mut tampered = signed(&lab_key(), now, "{}");
        tampered.body = b"{\"ClusterName\":\"other\"}".to_vec();
        assert_eq!(
            kind(keys.check(&tampered, now)),
            Some("InvalidSignatureException")
        );
        // Ten minutes off the lab's clock.
        let old = signed(&lab_key(), now - chrono::TimeDelta::minutes(10), "{}");
        let said = keys.check(&old, now).unwrap_err();
        assert!(said.message.starts_with("Signature expired"), "{said:?}");
        let mut unsigned = signed(&lab_key(), now, "{}");
        unsigned.headers.remove("authorization");
        assert_eq!(
            kind(keys.check(&unsigned, now)),
            Some("MissingAuthenticationTokenException")
        );
    }

    #[test]
    fn session_keys_hold_until_they_expire() {
        let now = Utc::now();
        let session = Key {
            access_key_id: "ASIAHPCHAOSLAB".into(),
            secret: "session-secret".into(),
            session_token: Some("token-1".into()),
            expires: Some(now + chrono::TimeDelta::minutes(1)),
        };
        let keys = Keys {
            keys: vec![session.clone()],
        };
        assert_eq!(keys.check(&signed(&session, now, "{}"), now), Ok(()));
        let later = now + chrono::TimeDelta::minutes(2);
        let said = keys
            .check(&signed(&session, later, "{}"), later)
            .unwrap_err();
        assert_eq!(said.kind, "ExpiredTokenException");
        let mut no_token = signed(&session, now, "{}");
        no_token
            .headers
            .insert("x-amz-security-token".into(), "forged".into());
        assert_eq!(
            keys.check(&no_token, now).unwrap_err().kind,
            "UnrecognizedClientException"
        );
    }

    #[test]
    fn keys_are_read_from_an_aws_credentials_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("credentials");
        std::fs::write(
            &path,
            "[hpchaos-lab]\naws_access_key_id = AKIDHPCHAOSLAB\naws_secret_access_key = s3cret\n\n[session]\naws_access_key_id=ASIAX\naws_secret_access_key=y\naws_session_token=t\nx_hpchaos_expires=2026-12-03T01:00:00Z\n",
        )
        .unwrap();
        let keys = Keys::from_credentials_file(&path);
        assert_eq!(keys.keys.len(), 2);
        assert_eq!(keys.keys[0], lab_key());
        assert_eq!(keys.keys[1].session_token.as_deref(), Some("t"));
        assert!(keys.keys[1].expires.is_some());
    }
}
