//! Kiln's HTTP listeners, bounded: every listener (management API, predictions, metrics) serves
//! through [`serve`], which caps open connections, closes a connection whose request head does
//! not arrive in time (slow clients, and idle keep-alive connections), answers 408 to a request
//! that takes too long to produce its response, and on shutdown stops accepting and drains the
//! connections it has within a grace period. With a certificate, it speaks TLS (rustls), the
//! handshake bounded by the header timeout.

use axum::Router;
use axum::body::Body;
use axum::http::{Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

/// The bounds of one listener.
#[derive(Clone)]
pub struct ListenerLimits {
    /// How long a client has to send a request's head, and how long a kept-alive connection may
    /// wait for its next request.
    pub header_timeout: Duration,
    /// How long a request may take until its response starts (a streamed response, such as a
    /// followed log, then goes on).
    pub request_timeout: Duration,
    /// Connections open at once; more wait in the kernel's backlog until one closes.
    pub max_connections: usize,
    /// How long shutdown waits for open connections to finish.
    pub grace: Duration,
    /// TLS: the certificate chain and key the listener presents; plain HTTP when `None`.
    pub tls: Option<tokio_rustls::TlsAcceptor>,
}

impl std::fmt::Debug for ListenerLimits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ListenerLimits")
            .field("header_timeout", &self.header_timeout)
            .field("request_timeout", &self.request_timeout)
            .field("max_connections", &self.max_connections)
            .field("grace", &self.grace)
            .field("tls", &self.tls.is_some())
            .finish()
    }
}

/// A TLS listener's certificate and key, read from PEM files.
pub struct Tls;

impl Tls {
    /// The acceptor for the certificate chain in `cert` and the private key in `key` (PEM).
    pub fn acceptor(
        cert: &std::path::Path,
        key: &std::path::Path,
    ) -> Result<tokio_rustls::TlsAcceptor, String> {
        use rustls_pki_types::pem::PemObject;
        use rustls_pki_types::{CertificateDer, PrivateKeyDer};
        let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
            .map_err(|e| format!("{}: {e}", cert.display()))?
            .collect::<Result<_, _>>()
            .map_err(|e| format!("{}: {e}", cert.display()))?;
        if chain.is_empty() {
            return Err(format!("{}: no certificate", cert.display()));
        }
        let key =
            PrivateKeyDer::from_pem_file(key).map_err(|e| format!("{}: {e}", key.display()))?;
        let provider = std::sync::Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
        let mut config = tokio_rustls::rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .map_err(|e| format!("certificate and key: {e}"))?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
    }
}

impl Default for ListenerLimits {
    fn default() -> Self {
        ListenerLimits {
            header_timeout: Duration::from_secs(20),
            request_timeout: Duration::from_secs(300),
            max_connections: 1024,
            grace: Duration::from_secs(30),
            tls: None,
        }
    }
}

fn timed_out(limit: Duration) -> Response<Body> {
    let body = serde_json::json!({
        "error": format!("the request took longer than {} s", limit.as_secs_f64()),
    });
    let mut response = Response::new(Body::from(body.to_string()));
    *response.status_mut() = StatusCode::REQUEST_TIMEOUT;
    response.headers_mut().insert(
        axum::http::header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static("application/json"),
    );
    response
}

/// Serves `app` on `listener` within `limits` until `shutdown` completes, then drains.
pub async fn serve<F>(
    listener: TcpListener,
    app: Router,
    limits: ListenerLimits,
    shutdown: F,
) -> std::io::Result<()>
where
    F: Future<Output = ()> + Send,
{
    let permits = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .max_headers(128);
    let request_timeout = limits.request_timeout;
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            permit = permits.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
            () = &mut shutdown => break,
        };
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of file descriptors, or a connection reset before it was accepted:
                    // go on after a pause rather than spin or stop serving.
                    tracing::warn!("accepting a connection: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let service = hyper::service::service_fn(move |request: Request<Incoming>| {
            let mut app = app.clone();
            async move {
                let request = request.map(Body::new);
                let answered =
                    tokio::time::timeout(request_timeout, tower::Service::call(&mut app, request))
                        .await;
                Ok::<_, Infallible>(match answered {
                    Ok(Ok(response)) => response,
                    Ok(Err(never)) => match never {},
                    Err(_) => timed_out(request_timeout),
                })
            }
        });
        let (watcher, builder, tls) = (graceful.watcher(), builder.clone(), limits.tls.clone());
        let handshake = limits.header_timeout;
        tokio::spawn(async move {
            match tls {
                None => {
                    let connection = builder.serve_connection(TokioIo::new(stream), service);
                    let _ = watcher.watch(connection).await;
                }
                Some(acceptor) => {
                    // A client that never finishes its handshake is cut off like a slow head.
                    if let Ok(Ok(stream)) =
                        tokio::time::timeout(handshake, acceptor.accept(stream)).await
                    {
                        let connection = builder.serve_connection(TokioIo::new(stream), service);
                        let _ = watcher.watch(connection).await;
                    }
                }
            }
            drop(permit);
        });
    }
    drop(listener);
    if tokio::time::timeout(limits.grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            "connections still open after the {} s grace period: closing them",
            limits.grace.as_secs_f64()
        );
    }
    Ok(())
}
