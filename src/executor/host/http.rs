//! `http-get` and `http-post`: requests only to the hosts a skill was
//! granted, without redirects, with a time limit and a capped body.

use std::time::Instant;

use super::{HTTP_TIMEOUT, MAX_HTTP_BODY_BYTES};
use crate::executor::DeadlineHit;
use crate::executor::grants::Grants;

/// `host` or `host:port` of an `http://` or `https://` URL.
fn url_authority(url: &str) -> Option<(String, Option<u16>)> {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))?;
    let authority = rest.split(['/', '?', '#']).next()?;
    if authority.contains('@') {
        return None;
    }
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || authority.starts_with('[') => {
            (h.to_string(), Some(p.parse().ok()?))
        }
        _ => (authority.to_string(), None),
    };
    (!host.is_empty()).then(|| (host.to_ascii_lowercase(), port))
}

fn host_allowed(grants: &Grants, url: &str) -> Result<(), String> {
    let (host, port) = url_authority(url)
        .ok_or_else(|| format!("`{url}` is not an http:// or https:// URL with a host"))?;
    let allowed = grants.http_hosts.iter().any(|entry| {
        let entry = entry.to_ascii_lowercase();
        entry == host || port.is_some_and(|p| entry == format!("{host}:{p}"))
    });
    if allowed {
        Ok(())
    } else {
        Err(format!(
            "permission denied: host `{host}` is not on this skill's HTTP allow-list"
        ))
    }
}

/// One request for `http-get`/`http-post`: the skill's own error as `Ok(Err)`,
/// or the invocation's deadline passing as a trap (the request is abandoned;
/// its thread ends at the request's own timeout, at most the time left).
pub(super) async fn http_request(
    grants: &Grants,
    method: &'static str,
    url: String,
    body: Option<String>,
    deadline: Instant,
) -> wasmtime::Result<Result<String, String>> {
    if let Err(denied) = host_allowed(grants, &url) {
        return Ok(Err(denied));
    }
    let timeout = HTTP_TIMEOUT.min(deadline.saturating_duration_since(Instant::now()));
    let task = tokio::task::spawn_blocking(move || {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(timeout))
            .max_redirects(0)
            .http_status_as_error(false)
            .build()
            .into();
        let response = match body {
            None => agent.get(&url).call(),
            Some(body) => agent.post(&url).send(body),
        };
        let mut response = response.map_err(|e| format!("{method} {url} failed: {e}"))?;
        let status = response.status();
        let text = response
            .body_mut()
            .with_config()
            .limit(MAX_HTTP_BODY_BYTES)
            .read_to_string()
            .map_err(|e| format!("{method} {url}: cannot read the response: {e}"))?;
        if status.is_success() {
            Ok(text)
        } else {
            Err(format!("{method} {url} answered {status}: {text}"))
        }
    });
    match tokio::time::timeout_at(deadline.into(), task).await {
        Ok(joined) => Ok(joined.unwrap_or_else(|e| Err(format!("{method} request failed: {e}")))),
        Err(_) => Err(DeadlineHit.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_matched_by_host_and_port() {
        let grants = Grants {
            http_hosts: ["example.com".to_string(), "127.0.0.1:8080".to_string()].into(),
            ..Grants::default()
        };
        host_allowed(&grants, "https://example.com/a?b").unwrap();
        host_allowed(&grants, "http://127.0.0.1:8080/x").unwrap();
        assert!(host_allowed(&grants, "http://127.0.0.1:9090/x").is_err());
        assert!(host_allowed(&grants, "http://evil.com@example.com/").is_err());
        assert!(host_allowed(&grants, "ftp://example.com/").is_err());
        assert!(host_allowed(&grants, "https://example.com.evil.org/").is_err());
    }
}
