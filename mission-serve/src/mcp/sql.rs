//! `query_sql`: read-only SQL over the store, with Apache DataFusion (feature `sql`).
//!
//! The engine is built on the store as the request's tenant scope may see it
//! ([`Source::store`](super::Source)), so a scoped request's SQL reads that tenant's files and
//! nothing else, whatever it says; DDL, DML, `COPY` and statements are refused, and every
//! answer is bounded in rows, bytes and time.

use std::time::Duration;

use mission_store::sql::{SqlEngine, SqlError, SqlLimits};
use rmcp::handler::server::tool::IntoCallToolResult;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{CallToolResponse, CallToolResult, ContentBlock};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, tool, tool_router};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{MAX_RESULT_BYTES, MissionMcp, internal, invalid, scope_of};

/// Most rows one `query_sql` answer returns.
pub const MAX_SQL_ROWS: usize = 1_000;

/// How long one `query_sql` query may run.
pub const SQL_TIMEOUT: Duration = Duration::from_secs(30);

/// Input of `query_sql`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct QuerySqlInput {
    /// One read-only SQL query (Apache DataFusion's dialect).
    pub sql: String,
    /// Rows at most (1–1000, default 100); a longer answer is cut and says `truncated`.
    #[serde(default)]
    pub max_rows: Option<usize>,
}

/// One column of an answer.
#[derive(Debug, Serialize, JsonSchema)]
pub struct SqlColumn {
    /// Its name.
    pub name: String,
    /// Its Arrow type.
    #[serde(rename = "type")]
    pub data_type: String,
}

/// The answer of `query_sql`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct SqlOutput {
    /// The columns, in order.
    pub columns: Vec<SqlColumn>,
    /// The rows, as objects (column name → value; timestamps as RFC 3339 text).
    pub rows: Vec<serde_json::Map<String, serde_json::Value>>,
    /// Rows returned.
    pub row_count: usize,
    /// True when more rows matched than were returned (the row or size bound).
    pub truncated: bool,
    /// How long the query took, in milliseconds.
    pub elapsed_ms: f64,
    /// Files of the store that could not be read and were left out: when present, the answer
    /// is incomplete.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unreadable: Vec<String>,
}

/// The answer as it is: column names are the query's, so none is renamed (unlike the other
/// tools' unit normalisation).
struct SqlAnswer {
    value: SqlOutput,
    text: String,
}

impl IntoCallToolResult for SqlAnswer {
    fn into_call_tool_result(self) -> Result<CallToolResponse, ErrorData> {
        let value = serde_json::to_value(self.value).map_err(internal)?;
        let mut result = CallToolResult::structured(value);
        result.content = vec![ContentBlock::text(self.text)];
        Ok(result.into())
    }
}

fn refused(error: SqlError) -> ErrorData {
    match error {
        SqlError::Invalid(_) | SqlError::Forbidden(_) | SqlError::Setting { .. } => {
            invalid(error.to_string())
        }
        _ => internal(error),
    }
}

#[tool_router(router = sql_router, vis = "pub(crate)")]
impl MissionMcp {
    /// Read-only SQL over the store.
    #[tool(
        name = "query_sql",
        description = "Read-only SQL (Apache DataFusion) over the store. Tables: events (every event: time, kind, gen_ai_agent_name, thread_id, span_id, parent_span_id, name, duration_ns, status, error_message, gen_ai_operation_name, gen_ai_provider_name, gen_ai_request_model, gen_ai_usage_input_tokens, gen_ai_usage_output_tokens, gen_ai_usage_cost, log_level, log_message, permission_*, anomaly_*, attributes (map: attributes['user.id']), tenant, date, hour) and views spans, llm_calls, tool_calls, logs, metrics, decisions, anomalies, scores (same columns) and threads (tenant, thread_id, agent, started, ended, spans, errors, llm_calls, tool_calls, input_tokens, output_tokens, cost). Only queries run (no DDL, DML, COPY or SET); at most max_rows rows (default 100, up to 1000) and 30 s. Example: SELECT gen_ai_request_model, sum(gen_ai_usage_cost) AS cost FROM llm_calls WHERE time > now() - INTERVAL '1 day' GROUP BY 1 ORDER BY cost DESC",
        output_schema = rmcp::handler::server::tool::schema_for_output::<SqlOutput>()
    )]
    pub(crate) async fn query_sql(
        &self,
        Parameters(input): Parameters<QuerySqlInput>,
        context: RequestContext<RoleServer>,
    ) -> Result<SqlAnswer, ErrorData> {
        let max_rows = input.max_rows.unwrap_or(100);
        if !(1..=MAX_SQL_ROWS).contains(&max_rows) {
            return Err(invalid(format!("max_rows must be 1 to {MAX_SQL_ROWS}, not {max_rows}")));
        }
        let limits = SqlLimits::default()
            .with_max_rows(max_rows)
            .and_then(|l| l.with_max_bytes(MAX_RESULT_BYTES * 4))
            .and_then(|l| l.with_timeout(SQL_TIMEOUT))
            .map_err(refused)?;
        let scope = scope_of(&context.extensions);
        self.blocking(move |source| {
            let store = source.store(scope.as_deref())?;
            let engine = SqlEngine::new(store, limits).map_err(refused)?;
            let answer = engine.query(&input.sql).map_err(refused)?;
            let mut rows = answer.to_json_rows().map_err(refused)?;
            // The size bound is on the JSON the client receives.
            let mut truncated = answer.truncated;
            let mut size = 0;
            if let Some(cut) = rows.iter().position(|row| {
                size += serde_json::to_string(row).map_or(0, |t| t.len()) + 1;
                size > MAX_RESULT_BYTES
            }) {
                rows.truncate(cut);
                truncated = true;
            }
            let mut text = format!(
                "{} row{}{} in {:.0} ms",
                rows.len(),
                if rows.len() == 1 { "" } else { "s" },
                if truncated { " (truncated: more matched)" } else { "" },
                answer.elapsed.as_secs_f64() * 1000.0
            );
            if !answer.skipped.is_empty() {
                text.push_str(&format!(
                    "; incomplete: {} unreadable file(s) left out",
                    answer.skipped.len()
                ));
            }
            let shown: Vec<arrow::array::RecordBatch> = {
                let mut left = 20usize;
                answer
                    .batches
                    .iter()
                    .map_while(|b| {
                        (left > 0).then(|| {
                            let n = b.num_rows().min(left);
                            left -= n;
                            b.slice(0, n)
                        })
                    })
                    .collect()
            };
            if let Ok(table) = arrow::util::pretty::pretty_format_batches(&shown) {
                let table = table.to_string();
                let mut cut = table.len().min(8 * 1024);
                while !table.is_char_boundary(cut) {
                    cut -= 1;
                }
                text.push('\n');
                text.push_str(&table[..cut]);
                if answer.rows() > 20 {
                    text.push_str("\n(first 20 rows shown; every row is in the structured answer)");
                }
            }
            let value = SqlOutput {
                columns: answer
                    .columns()
                    .into_iter()
                    .map(|(name, data_type)| SqlColumn { name, data_type })
                    .collect(),
                row_count: rows.len(),
                rows,
                truncated,
                elapsed_ms: answer.elapsed.as_secs_f64() * 1000.0,
                unreadable: answer.skipped.iter().map(ToString::to_string).collect(),
            };
            Ok(SqlAnswer { value, text })
        })
        .await
    }
}
