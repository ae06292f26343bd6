//! Throughput: live charts of requests per second and mean latency by operation, drawn by the
//! console's one script (`static/console.js`) on canvases from polling `GET /metrics.json`, which
//! gives the server's per-operation totals ([`crate::Metrics::operation_totals`]); the script takes
//! the differences between polls. Without JavaScript the page shows the totals as a table.

use bytes::Bytes;
use http::{header, HeaderValue, Response, StatusCode};
use http_body_util::Full;

use super::answer::Answer;
use super::signed::Signed;
use super::template::{render, Html};

pub(crate) fn page(s: &Signed<'_>) -> Answer {
    let totals = s.console.metrics.operation_totals();
    let rows: Vec<Html> = totals
        .iter()
        .map(|t| {
            let mean = if t.requests == 0 {
                0.0
            } else {
                t.latency_sum_us as f64 / t.requests as f64 / 1000.0
            };
            render(
                "<tr><td>{{op}}</td><td>{{n}}</td><td>{{e}}</td><td>{{mean}}</td></tr>",
                &[
                    ("op", t.operation.as_str().into()),
                    ("n", t.requests.into()),
                    ("e", t.errors.into()),
                    ("mean", format!("{mean:.3}").into()),
                ],
            )
        })
        .collect();
    let main = render(
        include_str!("templates/metrics.html"),
        &[("rows", Html::join(rows).into())],
    );
    s.page(StatusCode::OK, "Throughput", main)
}

pub(crate) fn json(s: &Signed<'_>) -> Answer {
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let body = serde_json::json!({
        "time_ms": now_ms,
        "operations": s.console.metrics.operation_totals(),
        "open_connections": s.console.metrics.open_connections(),
    });
    let mut answer = Response::new(Full::new(Bytes::from(body.to_string())));
    *answer.status_mut() = StatusCode::OK;
    answer.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    answer
}
