//! OTLP/gRPC: the three `Export` services on tonic, in front of the path HTTP uses.
//!
//! tonic frames, decompresses (gzip) and decodes the message (at most `max_body_bytes`,
//! compressed or not); then [`super::accept`] maps, queues and records it as it does an HTTP
//! request, with the tenant [`super::authenticate`] found in the `authorization` metadata (read
//! by an interceptor, before the message is read). Refusals become gRPC statuses here, counted
//! by [`super::count_refusal`] like HTTP's; each carries a `google.rpc.ErrorInfo` (and a
//! `google.rpc.RetryInfo` when retrying later helps). What tonic refuses itself, before our
//! code runs (a message too large, gzip that does not inflate, a truncated frame, an
//! undecodable message, an encoding it does not accept), has no details: [`Counted`] counts
//! it and answers it the OTLP way instead; it also refuses a request past `max_in_flight`
//! (shared with HTTP) as throttled, before the message is read.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};

use http::StatusCode;
use opentelemetry_proto::tonic::collector::logs::v1::logs_service_server::{
    LogsService, LogsServiceServer,
};
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_server::{
    MetricsService, MetricsServiceServer,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use tonic::codec::CompressionEncoding;
use tonic::server::NamedService;
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

use super::{Refusal, Shared, Signal, accept, admit, authenticate, count_refusal};

/// The domain of the `google.rpc.ErrorInfo` of our refusals.
const ERROR_DOMAIN: &str = "mission-control";

/// The tenant the interceptor found for a request (`None`: every tenant).
#[derive(Clone)]
struct Scope(Option<String>);

/// The services' state: the receiver's, shared with HTTP.
#[derive(Clone)]
struct Otlp(Arc<Shared>);

impl Otlp {
    async fn export<S: Signal>(
        &self,
        request: tonic::Request<S>,
    ) -> Result<tonic::Response<S::Response>, Status> {
        let scope = request.extensions().get::<Scope>().cloned().unwrap_or(Scope(None));
        let request = request.into_inner();
        match accept(&self.0, request, scope.0.as_deref()).await {
            Ok((rejected, message)) => Ok(tonic::Response::new(S::response(rejected, message))),
            Err(refusal) => Err(refuse(&self.0, refusal)),
        }
    }
}

#[tonic::async_trait]
impl TraceService for Otlp {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, Status> {
        Otlp::export(self, request).await
    }
}

#[tonic::async_trait]
impl LogsService for Otlp {
    async fn export(
        &self,
        request: tonic::Request<ExportLogsServiceRequest>,
    ) -> Result<tonic::Response<ExportLogsServiceResponse>, Status> {
        Otlp::export(self, request).await
    }
}

#[tonic::async_trait]
impl MetricsService for Otlp {
    async fn export(
        &self,
        request: tonic::Request<ExportMetricsServiceRequest>,
    ) -> Result<tonic::Response<ExportMetricsServiceResponse>, Status> {
        Otlp::export(self, request).await
    }
}

/// Counts every request and checks its token before its message is read.
#[derive(Clone)]
struct Authenticate(Arc<Shared>);

impl Interceptor for Authenticate {
    fn call(&mut self, mut request: tonic::Request<()>) -> Result<tonic::Request<()>, Status> {
        self.0.counters.requests.fetch_add(1, Ordering::Relaxed);
        let authorization = request.metadata().get("authorization").map(|v| v.as_bytes());
        match authenticate(&self.0, authorization) {
            Ok(scope) => {
                request.extensions_mut().insert(Scope(scope));
                Ok(request)
            }
            Err(refusal) => Err(refuse(&self.0, refusal)),
        }
    }
}

/// Counts a refusal and turns it into the gRPC status OTLP senders act on.
fn refuse(shared: &Shared, refusal: Refusal) -> Status {
    count_refusal(shared, &refusal);
    let mut details = ErrorDetails::new();
    let (code, reason, retry) = match refusal.status {
        StatusCode::TOO_MANY_REQUESTS => (Code::ResourceExhausted, "THROTTLED", true),
        StatusCode::SERVICE_UNAVAILABLE => (Code::Unavailable, "UNAVAILABLE", true),
        StatusCode::UNAUTHORIZED => (Code::Unauthenticated, "UNAUTHENTICATED", false),
        // Not to be retried: without RetryInfo, OTLP senders drop it.
        StatusCode::PAYLOAD_TOO_LARGE => (Code::ResourceExhausted, "TOO_LARGE", false),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => (Code::Unimplemented, "UNSUPPORTED", false),
        _ => (Code::InvalidArgument, "MALFORMED", false),
    };
    details.set_error_info(reason, ERROR_DOMAIN, std::collections::HashMap::new());
    if retry {
        details.set_retry_info(Some(shared.config.retry_after));
    }
    Status::with_error_details(code, refusal.message, details)
}

/// Lets at most `max_in_flight` requests in ([`admit`], shared with HTTP), and counts what
/// tonic refused before our code ran (such a status has no details; ours all do) and answers
/// it with the code OTLP senders expect.
#[derive(Clone)]
struct Counted<S> {
    inner: S,
    shared: Arc<Shared>,
    signal: &'static str,
}

impl<S: NamedService> NamedService for Counted<S> {
    const NAME: &'static str = S::NAME;
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

impl<S, B, R> tonic::codegen::Service<http::Request<B>> for Counted<S>
where
    S: tonic::codegen::Service<http::Request<B>, Response = http::Response<R>, Error = Infallible>,
    S::Future: Send + 'static,
    R: tonic::codegen::Body<Data = tonic::codegen::Bytes> + Send + 'static,
    R::Error: Into<tonic::codegen::StdError>,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let shared = self.shared.clone();
        // Before the message is read: at most `max_in_flight` requests, HTTP's included.
        let permit = match admit(&shared) {
            Ok(permit) => permit,
            Err(refusal) => {
                let response = refuse(&shared, refusal).into_http();
                return Box::pin(std::future::ready(Ok(response)));
            }
        };
        let answer = self.inner.call(request);
        let signal = self.signal;
        Box::pin(async move {
            let response = answer.await?.map(tonic::body::Body::new);
            drop(permit);
            Ok(recount(&shared, signal, response))
        })
    }
}

fn recount(
    shared: &Shared,
    signal: &str,
    response: http::Response<tonic::body::Body>,
) -> http::Response<tonic::body::Body> {
    if response.headers().contains_key(Status::GRPC_STATUS_DETAILS) {
        return response; // ours: counted already
    }
    // A trailers-only answer (an error before any message) has its status in the headers.
    let Some(status) = Status::from_header_map(response.headers()) else { return response };
    let limit = shared.config.max_body_bytes;
    let refusal = match status.code() {
        Code::OutOfRange | Code::ResourceExhausted => Refusal::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the {signal} message is larger than {limit} bytes: {}", status.message()),
        ),
        Code::Internal => Refusal::new(
            StatusCode::BAD_REQUEST,
            format!("the {signal} request is not valid protobuf: {}", status.message()),
        ),
        Code::Unimplemented => Refusal::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("{} (send gzip or no compression)", status.message()),
        ),
        _ => return response,
    };
    refuse(shared, refusal).into_http()
}

/// The gRPC services over `shared`, ready to serve.
pub(super) fn router(shared: &Arc<Shared>) -> tonic::transport::server::Router {
    let limit = shared.config.max_body_bytes;
    let otlp = Otlp(shared.clone());
    let auth = Authenticate(shared.clone());
    let traces = TraceServiceServer::new(otlp.clone())
        .accept_compressed(CompressionEncoding::Gzip)
        .max_decoding_message_size(limit);
    let logs = LogsServiceServer::new(otlp.clone())
        .accept_compressed(CompressionEncoding::Gzip)
        .max_decoding_message_size(limit);
    let metrics = MetricsServiceServer::new(otlp)
        .accept_compressed(CompressionEncoding::Gzip)
        .max_decoding_message_size(limit);
    tonic::transport::Server::builder()
        .add_service(counted(shared, "traces", InterceptedService::new(traces, auth.clone())))
        .add_service(counted(shared, "logs", InterceptedService::new(logs, auth.clone())))
        .add_service(counted(shared, "metrics", InterceptedService::new(metrics, auth)))
}

fn counted<S>(shared: &Arc<Shared>, signal: &'static str, inner: S) -> Counted<S> {
    Counted { inner, shared: shared.clone(), signal }
}

/// Serves `router` on `listener` until `stopped` completes; requests being answered finish
/// first.
pub(super) async fn serve(
    listener: std::net::TcpListener,
    router: tonic::transport::server::Router,
    stopped: impl Future<Output = ()> + Send,
) {
    let Ok(listener) = tokio::net::TcpListener::from_std(listener) else { return };
    let incoming = tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
    let _ = router.serve_with_incoming_shutdown(incoming, stopped).await;
}
