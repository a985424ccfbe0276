//! The fetch phase's only way out: an HTTP `CONNECT` proxy boternity runs on
//! 127.0.0.1 for the length of one `cargo fetch`.
//!
//! The confined fetch may open TCP connections to this proxy's port and to
//! nothing else (Landlock), may create no UDP, Unix, netlink or other socket
//! (seccomp), and is pointed at the proxy with `CARGO_HTTP_PROXY`. The proxy
//! tunnels only to the package registries boternity is configured for
//! ([`RegistryHosts`]: crates.io by default, or a mirror), resolves their
//! names itself, and refuses every address that points inward — loopback,
//! private, link-local ([`crate::address::is_inward`]) — unless the
//! configuration names that address literally. A skill's manifest cannot name another source (that is refused
//! before the fetch, see [`super::sources`]), and should it try anyway, the
//! proxy says no.

use std::io::{Read, Write};
use std::net::{IpAddr, Shutdown, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// How long a tunnel may sit idle, and how long connecting may take.
const IO_TIMEOUT: Duration = Duration::from_secs(60);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);
/// Largest request head the proxy reads.
const MAX_HEAD: usize = 8 * 1024;

/// The registries a fetch may reach: `host:port` pairs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryHosts {
    hosts: Vec<(String, u16)>,
    /// A sparse index that replaces crates.io (`sparse+https://…/`).
    mirror: Option<String>,
}

impl Default for RegistryHosts {
    /// crates.io: its sparse index, its download host and its API host.
    fn default() -> Self {
        RegistryHosts {
            hosts: ["index.crates.io", "static.crates.io", "crates.io"]
                .map(|h| (h.to_string(), 443))
                .to_vec(),
            mirror: None,
        }
    }
}

/// A mirror or host setting that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("`{value}` is not a usable {what}: {why}")]
pub struct RegistryHostsError {
    value: String,
    what: &'static str,
    why: &'static str,
}

impl RegistryHosts {
    /// crates.io replaced by the sparse index at `mirror`
    /// (`sparse+https://host[:port]/path/`), whose host is then allowed
    /// instead of crates.io's; `extra` hosts (`host[:port]`, port 443 by
    /// default) are allowed too (a mirror's download host).
    pub fn with_mirror(
        mirror: &str,
        extra: &[String],
    ) -> Result<RegistryHosts, RegistryHostsError> {
        let bad = |why| RegistryHostsError {
            value: mirror.to_string(),
            what: "crates.io mirror (sparse+https://host/path/)",
            why,
        };
        let rest = mirror
            .strip_prefix("sparse+https://")
            .ok_or_else(|| bad("it must start with sparse+https://"))?;
        let authority = rest.split('/').next().unwrap_or_default();
        let mut hosts = vec![parse_host(authority).ok_or_else(|| bad("it names no host"))?];
        for e in extra {
            hosts.push(parse_host(e).ok_or_else(|| RegistryHostsError {
                value: e.clone(),
                what: "registry host (host[:port])",
                why: "it is not a host name with an optional port",
            })?);
        }
        Ok(RegistryHosts {
            hosts,
            mirror: Some(mirror.to_string()),
        })
    }

    /// The hosts a fetch may reach, as `host:port`.
    pub fn hosts(&self) -> Vec<String> {
        self.hosts.iter().map(|(h, p)| format!("{h}:{p}")).collect()
    }

    /// cargo's `--config` arguments that put the mirror in crates.io's place.
    pub fn cargo_config(&self) -> Vec<String> {
        match &self.mirror {
            Some(url) => vec![
                "source.crates-io.replace-with=\"boternity-mirror\"".into(),
                format!("source.boternity-mirror.registry=\"{url}\""),
            ],
            None => Vec::new(),
        }
    }

    fn allows(&self, host: &str, port: u16) -> bool {
        self.hosts
            .iter()
            .any(|(h, p)| *p == port && h.eq_ignore_ascii_case(host))
    }
}

fn parse_host(authority: &str) -> Option<(String, u16)> {
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') || h.ends_with(']') => (h, p.parse().ok()?),
        _ => (authority, 443),
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let ok = !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-' || b == b':');
    ok.then(|| (host.to_ascii_lowercase(), port))
}

/// A running proxy; stopped (and its port closed) on drop.
pub struct FetchProxy {
    port: u16,
    stop: Arc<AtomicBool>,
    refused: Arc<Mutex<Vec<String>>>,
    acceptor: Option<JoinHandle<()>>,
}

impl FetchProxy {
    /// Listens on 127.0.0.1 (a port the kernel picks) and serves until dropped.
    pub fn start(allowed: RegistryHosts) -> std::io::Result<FetchProxy> {
        let listener = TcpListener::bind(("127.0.0.1", 0))?;
        let port = listener.local_addr()?.port();
        let stop = Arc::new(AtomicBool::new(false));
        let refused = Arc::new(Mutex::new(Vec::new()));
        let allowed = Arc::new(allowed);
        let acceptor = {
            let stop = Arc::clone(&stop);
            let refused = Arc::clone(&refused);
            std::thread::spawn(move || {
                for client in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(client) = client else { continue };
                    let allowed = Arc::clone(&allowed);
                    let refused = Arc::clone(&refused);
                    std::thread::spawn(move || {
                        if let Err(why) = serve(client, &allowed, &refused) {
                            tracing::debug!(%why, "fetch proxy connection ended");
                        }
                    });
                }
            })
        };
        Ok(FetchProxy {
            port,
            stop,
            refused,
            acceptor: Some(acceptor),
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// What the proxy refused so far, one line each (for the fetch's error).
    pub fn refused(&self) -> Vec<String> {
        self.refused
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

impl Drop for FetchProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the acceptor, which then sees the flag.
        let _ = TcpStream::connect_timeout(
            &SocketAddr::from(([127, 0, 0, 1], self.port)),
            Duration::from_secs(1),
        );
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
    }
}

/// One client: a `CONNECT host:port` checked and tunnelled, or refused with
/// a 4xx and the reason returned.
fn serve(
    mut client: TcpStream,
    allowed: &RegistryHosts,
    refused: &Mutex<Vec<String>>,
) -> Result<(), String> {
    let _ = client.set_read_timeout(Some(IO_TIMEOUT));
    let _ = client.set_write_timeout(Some(IO_TIMEOUT));
    let head = read_head(&mut client).map_err(|e| format!("unreadable request: {e}"))?;
    let line = head.lines().next().unwrap_or_default().to_string();
    let mut words = line.split_whitespace();
    let (method, target) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
    let refuse = |client: &mut TcpStream, code: &str, why: String| {
        // Noted before the reply, so whoever reads the reply sees it noted.
        tracing::warn!(%why, "fetch proxy refused a connection");
        refused
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(why.clone());
        let reply = format!(
            "HTTP/1.1 {code}\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\nboternity fetch proxy: {why}\n"
        );
        let _ = client.write_all(reply.as_bytes());
        Err(why)
    };
    if !method.eq_ignore_ascii_case("CONNECT") {
        return refuse(
            &mut client,
            "405 Method Not Allowed",
            format!("`{method} {target}`: only CONNECT to a package registry is proxied"),
        );
    }
    let Some((host, port)) = parse_host(target) else {
        return refuse(
            &mut client,
            "400 Bad Request",
            format!("`{target}` is not host:port"),
        );
    };
    if !allowed.allows(&host, port) {
        return refuse(
            &mut client,
            "403 Forbidden",
            format!(
                "{host}:{port} is not a package registry this build may fetch from (allowed: {})",
                allowed.hosts().join(", ")
            ),
        );
    }
    let literal = host.parse::<IpAddr>().is_ok();
    let addresses: Vec<SocketAddr> = match (host.as_str(), port).to_socket_addrs() {
        Ok(found) => found.collect(),
        Err(e) => {
            return refuse(
                &mut client,
                "502 Bad Gateway",
                format!("cannot resolve {host}: {e}"),
            );
        }
    };
    // A name that resolves inward (DNS rebinding, an internal name) is
    // refused; an address written literally in the configuration is meant.
    let usable: Vec<SocketAddr> = addresses
        .iter()
        .copied()
        .filter(|a| literal || !crate::address::is_inward(a.ip()))
        .collect();
    if usable.is_empty() {
        return refuse(
            &mut client,
            "403 Forbidden",
            format!(
                "{host} resolves only to loopback, private or link-local addresses ({}); refused",
                addresses
                    .iter()
                    .map(|a| a.ip().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        );
    }
    let upstream = usable
        .iter()
        .find_map(|a| TcpStream::connect_timeout(a, CONNECT_TIMEOUT).ok());
    let Some(upstream) = upstream else {
        return refuse(
            &mut client,
            "502 Bad Gateway",
            format!("cannot connect to {host}:{port}"),
        );
    };
    let _ = upstream.set_read_timeout(Some(IO_TIMEOUT));
    let _ = upstream.set_write_timeout(Some(IO_TIMEOUT));
    client
        .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
        .map_err(|e| e.to_string())?;
    tunnel(client, upstream);
    Ok(())
}

/// Reads up to the blank line that ends a request head.
fn read_head(client: &mut TcpStream) -> std::io::Result<String> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if head.len() >= MAX_HEAD {
            return Err(std::io::Error::other("request head too large"));
        }
        if client.read(&mut byte)? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        head.push(byte[0]);
    }
    Ok(String::from_utf8_lossy(&head).into_owned())
}

/// Copies both ways until either side closes (or idles past the timeout).
fn tunnel(client: TcpStream, upstream: TcpStream) {
    let (Ok(mut client_read), Ok(mut upstream_write)) = (client.try_clone(), upstream.try_clone())
    else {
        return;
    };
    let up = std::thread::spawn(move || {
        let _ = std::io::copy(&mut client_read, &mut upstream_write);
        let _ = upstream_write.shutdown(Shutdown::Write);
    });
    let (mut upstream_read, mut client_write) = (upstream, client);
    let _ = std::io::copy(&mut upstream_read, &mut client_write);
    let _ = client_write.shutdown(Shutdown::Both);
    let _ = upstream_read.shutdown(Shutdown::Both);
    let _ = up.join();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn connect_through(proxy: &FetchProxy, target: &str) -> String {
        let mut s = TcpStream::connect(("127.0.0.1", proxy.port())).unwrap();
        write!(s, "CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n").unwrap();
        // A refusal closes the connection after its reply.
        let mut reply = Vec::new();
        let _ = s.read_to_end(&mut reply);
        String::from_utf8_lossy(&reply).into_owned()
    }

    #[test]
    fn only_allowed_hosts_at_public_or_literal_addresses_are_tunnelled() {
        let server = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = server.local_addr().unwrap().port();
        std::thread::spawn(move || {
            for mut s in server.incoming().flatten() {
                let _ = s.write_all(b"hello");
            }
        });
        // A name that resolves to loopback is refused even when allowed.
        let by_name = RegistryHosts {
            hosts: vec![("localhost".into(), port)],
            mirror: None,
        };
        let proxy = FetchProxy::start(by_name).unwrap();
        let reply = connect_through(&proxy, &format!("localhost:{port}"));
        assert!(reply.starts_with("HTTP/1.1 403"), "{reply}");
        assert!(reply.contains("loopback, private or link-local"), "{reply}");
        // A host that is not a registry is refused, whatever its address.
        let reply = connect_through(&proxy, &format!("127.0.0.1:{port}"));
        assert!(reply.starts_with("HTTP/1.1 403"), "{reply}");
        let reply = connect_through(&proxy, "example.org:443");
        assert!(reply.contains("not a package registry"), "{reply}");
        assert_eq!(proxy.refused().len(), 3);
        drop(proxy);

        // An address the configuration writes literally is meant.
        let literal =
            RegistryHosts::with_mirror(&format!("sparse+https://127.0.0.1:{port}/index/"), &[])
                .unwrap();
        assert_eq!(
            literal.cargo_config()[1],
            format!("source.boternity-mirror.registry=\"sparse+https://127.0.0.1:{port}/index/\"")
        );
        let proxy = FetchProxy::start(literal).unwrap();
        let mut s = TcpStream::connect(("127.0.0.1", proxy.port())).unwrap();
        write!(s, "CONNECT 127.0.0.1:{port} HTTP/1.1\r\n\r\n").unwrap();
        let mut all = Vec::new();
        let _ = s.read_to_end(&mut all);
        let text = String::from_utf8_lossy(&all);
        assert!(text.starts_with("HTTP/1.1 200"), "{text}");
        assert!(text.ends_with("hello"), "{text}");
    }

    #[test]
    fn plain_requests_and_bad_mirrors_are_refused() {
        let proxy = FetchProxy::start(RegistryHosts::default()).unwrap();
        let mut s = TcpStream::connect(("127.0.0.1", proxy.port())).unwrap();
        s.write_all(b"GET http://127.0.0.1:80/ HTTP/1.1\r\n\r\n")
            .unwrap();
        let mut reply = String::new();
        let _ = s.read_to_string(&mut reply);
        assert!(reply.starts_with("HTTP/1.1 405"), "{reply}");
        assert!(RegistryHosts::with_mirror("http://mirror/", &[]).is_err());
        assert!(RegistryHosts::with_mirror("sparse+https:///x", &[]).is_err());
    }
}
