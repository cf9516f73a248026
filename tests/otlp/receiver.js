// An independent OTLP receiver for the export tests: Elastic's mockotlpserver decodes
// OTLP/HTTP (protobuf and JSON) and OTLP/gRPC. Prints one JSON line when listening, then one
// JSON line per span, log record or metric received (resource attributes attached), on stdout.
//
// Usage: node receiver.js <httpPort> <grpcPort> [<cert.pem> <key.pem>]   (0 picks a free port)
//
// With a certificate and its key it also listens for OTLP/HTTP and OTLP/gRPC over TLS (Node's
// own TLS in front of the same receiver), adds `https` and `grpcs` to the ready line, and prints
// the headers of each OTLP/HTTP request that came over TLS as `{"tls_request": {...}}`.
'use strict';
const fs = require('fs');
const net = require('net');
const tls = require('tls');
const {MockOtlpServer, normalizeTrace, normalizeLogs, normalizeMetrics} = require('@elastic/mockotlpserver');

const [httpPort, grpcPort] = process.argv.slice(2, 4).map((p) => Number(p || 0));
const [certFile, keyFile] = process.argv.slice(4, 6);
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
// Terminates TLS and forwards the bytes to `plainUrl`; resolves to the TLS listener's URL.
function tlsFront(plainUrl, scheme, alpn, inspect) {
    const target = new URL(plainUrl);
    const options = {cert: fs.readFileSync(certFile), key: fs.readFileSync(keyFile), ALPNProtocols: alpn};
    const front = tls.createServer(options, (client) => {
        const upstream = net.connect(Number(target.port), target.hostname);
        client.on('error', () => upstream.destroy());
        upstream.on('error', () => client.destroy());
        if (inspect) {
            client.on('data', (chunk) => {
                const text = chunk.toString('latin1');
                if (!/^(POST|GET|PUT) /.test(text)) return;
                const head = text.split('\r\n\r\n')[0].split('\r\n');
                const headers = {};
                for (const line of head.slice(1)) {
                    const i = line.indexOf(':');
                    if (i > 0) headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
                }
                process.stdout.write(JSON.stringify({tls_request: {line: head[0], headers}}) + '\n');
            });
        }
        client.pipe(upstream);
        upstream.pipe(client);
    });
    return new Promise((resolve) => {
        front.listen(0, '127.0.0.1', () => resolve(`${scheme}://127.0.0.1:${front.address().port}`));
    });
}

server.start().then(async () => {
    const ready = {http: server.httpUrl, grpc: server.grpcUrl};
    if (certFile && keyFile) {
        ready.https = await tlsFront(server.httpUrl, 'https', ['http/1.1'], true);
        ready.grpcs = await tlsFront(server.grpcUrl, 'https', ['h2'], false);
    }
    process.stdout.write(JSON.stringify({ready}) + '\n');
});
process.on('SIGTERM', () => server.close().then(() => process.exit(0)));
