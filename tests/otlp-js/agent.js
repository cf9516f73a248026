// A small agent instrumented with the OpenTelemetry JS SDK, as a TypeScript agent would be: one
// run (`invoke_agent`) with two GenAI-attributed LLM calls and a tool call, and a log record
// written inside the tool call (so it carries the trace context). Spans go out through the
// OTLP/HTTP protobuf exporter, or the OTLP/gRPC exporter with `--grpc URL`; the log record
// through the OTLP/HTTP protobuf logs exporter. Every export must succeed; then what was sent
// (ids, names, parents) is printed as one JSON line for the test to compare with the store.
//
//   node agent.js --endpoint http://127.0.0.1:4318 --token TOKEN [--grpc http://127.0.0.1:4317]

'use strict';

const { context, trace, SpanKind, SpanStatusCode } = require('@opentelemetry/api');
const { SeverityNumber } = require('@opentelemetry/api-logs');
const { resourceFromAttributes } = require('@opentelemetry/resources');
const { NodeTracerProvider, SimpleSpanProcessor } = require('@opentelemetry/sdk-trace-node');
const { LoggerProvider, SimpleLogRecordProcessor } = require('@opentelemetry/sdk-logs');
const { OTLPLogExporter } = require('@opentelemetry/exporter-logs-otlp-proto');

function args(argv) {
  const out = {};
  for (let i = 0; i < argv.length; i += 2) {
    const key = argv[i];
    const value = argv[i + 1];
    if (!['--endpoint', '--token', '--grpc'].includes(key) || value === undefined) {
      throw new Error(`usage: agent.js --endpoint URL --token TOKEN [--grpc URL] (at ${key})`);
    }
    out[key.slice(2)] = value;
  }
  if (!out.endpoint || !out.token) {
    throw new Error('usage: agent.js --endpoint URL --token TOKEN [--grpc URL]');
  }
  return out;
}

function spanExporter(opts) {
  if (opts.grpc) {
    // Loaded only when asked for: the gRPC exporter and its grpc-js.
    const { OTLPTraceExporter } = require('@opentelemetry/exporter-trace-otlp-grpc');
    const { Metadata } = require('@grpc/grpc-js');
    const metadata = new Metadata();
    metadata.set('authorization', `Bearer ${opts.token}`);
    return new OTLPTraceExporter({ url: opts.grpc, metadata });
  }
  const { OTLPTraceExporter } = require('@opentelemetry/exporter-trace-otlp-proto');
  return new OTLPTraceExporter({
    url: `${opts.endpoint}/v1/traces`,
    headers: { Authorization: `Bearer ${opts.token}` },
  });
}

/** The exporter, keeping the result code of every export (0 is success). */
function checked(exporter, results) {
  return {
    export(items, done) {
      exporter.export(items, (result) => {
        results.push({ code: result.code, items: items.length, error: result.error && String(result.error) });
        done(result);
      });
    },
    shutdown: () => exporter.shutdown(),
    forceFlush: () => (exporter.forceFlush ? exporter.forceFlush() : Promise.resolve()),
  };
}

async function main() {
  const opts = args(process.argv.slice(2));
  const resource = resourceFromAttributes({ 'service.name': 'ts-agent' });
  const spanResults = [];
  const logResults = [];
  const tracerProvider = new NodeTracerProvider({
    resource,
    spanProcessors: [new SimpleSpanProcessor(checked(spanExporter(opts), spanResults))],
  });
  tracerProvider.register();
  const logExporter = new OTLPLogExporter({
    url: `${opts.endpoint}/v1/logs`,
    headers: { Authorization: `Bearer ${opts.token}` },
  });
  const loggerProvider = new LoggerProvider({
    resource,
    processors: [new SimpleLogRecordProcessor({ exporter: checked(logExporter, logResults) })],
  });
  const tracer = trace.getTracer('ts-agent', '1.0.0');
  const logger = loggerProvider.getLogger('ts-agent.tools');

  const sent = { spans: [], log: null };
  const ids = (span) => span.spanContext();
  const note = (span, name, parent) => {
    sent.spans.push({ name, span_id: ids(span).spanId, parent_span_id: parent ? ids(parent).spanId : null });
  };
  const chat = (parent, model, input, output) => {
    const span = tracer.startSpan(`chat ${model}`, {
      kind: SpanKind.CLIENT,
      attributes: {
        'gen_ai.operation.name': 'chat',
        'gen_ai.provider.name': 'openai',
        'gen_ai.request.model': model,
        'gen_ai.response.model': `${model}-2024-07-18`,
        'gen_ai.usage.input_tokens': input,
        'gen_ai.usage.output_tokens': output,
        'gen_ai.response.finish_reasons': ['stop'],
      },
    }, trace.setSpan(context.active(), parent));
    note(span, `chat ${model}`, parent);
    span.end();
  };

  const root = tracer.startSpan('invoke_agent ts-agent', {
    attributes: { 'gen_ai.operation.name': 'invoke_agent', 'gen_ai.agent.name': 'ts-agent' },
  });
  note(root, 'invoke_agent ts-agent', null);
  sent.trace_id = ids(root).traceId;
  chat(root, 'gpt-4o-mini', 812, 64);
  const tool = tracer.startSpan('execute_tool get_weather', {
    attributes: {
      'gen_ai.operation.name': 'execute_tool',
      'gen_ai.tool.name': 'get_weather',
      'gen_ai.tool.call.id': 'call_0001',
    },
  }, trace.setSpan(context.active(), root));
  note(tool, 'execute_tool get_weather', root);
  context.with(trace.setSpan(context.active(), tool), () => {
    logger.emit({
      severityNumber: SeverityNumber.WARN,
      severityText: 'WARN',
      body: 'weather service slow, retrying',
      attributes: { 'app.retry': 1 },
    });
  });
  sent.log = { trace_id: ids(tool).traceId, span_id: ids(tool).spanId };
  tool.setStatus({ code: SpanStatusCode.ERROR, message: 'weather service timed out' });
  tool.end();
  chat(root, 'gpt-4o', 1200, 30);
  root.end();

  await tracerProvider.shutdown();
  await loggerProvider.shutdown();
  const failed = [...spanResults, ...logResults].filter((r) => r.code !== 0);
  const exported = (results) => results.reduce((n, r) => n + (r.code === 0 ? r.items : 0), 0);
  sent.exported = { spans: exported(spanResults), logs: exported(logResults) };
  process.stdout.write(`${JSON.stringify(sent)}\n`);
  if (failed.length > 0) {
    process.stderr.write(`exports failed: ${JSON.stringify(failed)}\n`);
    process.exitCode = 1;
  }
}

main().catch((e) => {
  process.stderr.write(`${e.stack || e}\n`);
  process.exitCode = 2;
});
