// An independent OTLP receiver for the export tests: Elastic's mockotlpserver decodes
// OTLP/HTTP (protobuf and JSON) and OTLP/gRPC. Prints one JSON line when listening, then one
// JSON line per span, log record or metric received (resource attributes attached), on stdout.
//
// Usage: node receiver.js <httpPort> <grpcPort>   (0 picks a free port)
'use strict';
const {MockOtlpServer, normalizeTrace, normalizeLogs, normalizeMetrics} = require('@elastic/mockotlpserver');

const [httpPort, grpcPort] = process.argv.slice(2).map((p) => Number(p || 0));
const server = new MockOtlpServer({
    logLevel: 'warn',
    services: ['http', 'grpc'],
    httpHostname: '127.0.0.1',
    grpcHostname: '127.0.0.1',
    httpPort,
    grpcPort,
    onTrace: (trace) => {
        const norm = normalizeTrace(trace);
        for (const rs of norm.resourceSpans || []) {
            const resource = (rs.resource && rs.resource.attributes) || {};
            for (const ss of rs.scopeSpans || []) {
                for (const span of ss.spans || []) {
                    process.stdout.write(JSON.stringify({span, resource, scope: ss.scope}) + '\n');
                }
            }
        }
    },
    onLogs: (logs) => {
        const norm = normalizeLogs(logs);
        for (const rl of norm.resourceLogs || []) {
            const resource = (rl.resource && rl.resource.attributes) || {};
            for (const sl of rl.scopeLogs || []) {
                for (const log of sl.logRecords || []) {
                    process.stdout.write(JSON.stringify({log, resource, scope: sl.scope}) + '\n');
                }
            }
        }
    },
    onMetrics: (metrics) => {
        const norm = normalizeMetrics(metrics);
        for (const rm of norm.resourceMetrics || []) {
            const resource = (rm.resource && rm.resource.attributes) || {};
            for (const sm of rm.scopeMetrics || []) {
                for (const metric of sm.metrics || []) {
                    process.stdout.write(JSON.stringify({metric, resource, scope: sm.scope}) + '\n');
                }
            }
        }
    },
});
server.start().then(() => {
    process.stdout.write(JSON.stringify({ready: {http: server.httpUrl, grpc: server.grpcUrl}}) + '\n');
});
process.on('SIGTERM', () => server.close().then(() => process.exit(0)));
