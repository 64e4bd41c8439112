// Writes log lines with real Node logging libraries into the processor's
// parser test data. Run from this directory:
//
//   npm install && node samplegen.js ../../log-processor/internal/parser/testdata/libs
//
// Each file is named after the library and the version that wrote it.
'use strict';
const fs = require('fs');
const path = require('path');

const dir = process.argv[2];
if (!dir) {
  console.error('usage: node samplegen.js DIR');
  process.exit(2);
}
const version = (name) => require(`${name}/package.json`).version;
const file = (name) => path.join(dir, `${name}@${version(name)}.jsonl`);

function pinoLines() {
  const pino = require('pino');
  const out = fs.openSync(file('pino'), 'w');
  const log = pino({ level: 'trace', name: 'checkout' }, pino.destination({ fd: out, sync: true }));
  log.trace('entering handler');
  log.debug({ key: 'user:1007' }, 'cache lookup');
  log.info({ method: 'GET', status: 200 }, 'request completed');
  log.warn({ ms: 812 }, 'slow query');
  log.error({ user_id: 'u-1007' }, 'payment declined');
  log.fatal('cannot continue');
  pino({ level: 'info' }, pino.destination({ fd: out, sync: true })).info('no name given');
  fs.closeSync(out);
}

function bunyanLines() {
  const bunyan = require('bunyan');
  const stream = fs.createWriteStream(null, { fd: fs.openSync(file('bunyan'), 'w') });
  const log = bunyan.createLogger({ name: 'inventory', level: 'trace', streams: [{ stream, level: 'trace' }] });
  log.trace('entering handler');
  log.debug({ key: 'user:1007' }, 'cache lookup');
  log.info({ method: 'GET', status: 200 }, 'request completed');
  log.warn({ ms: 812 }, 'slow query');
  log.error({ user_id: 'u-1007' }, 'payment declined');
  log.fatal('cannot continue');
  return new Promise((resolve) => stream.end(resolve));
}

function winstonLines() {
  const winston = require('winston');
  const log = winston.createLogger({
    level: 'silly',
    format: winston.format.combine(winston.format.timestamp(), winston.format.json()),
    defaultMeta: { service: 'notifications' },
    transports: [new winston.transports.File({ filename: file('winston') })],
  });
  log.silly('very fine detail');
  log.debug('cache lookup', { key: 'user:1007' });
  log.verbose('verbose detail');
  log.http('GET /api/orders 200');
  log.info('request completed', { method: 'GET', status: 200 });
  log.warn('slow query', { ms: 812 });
  log.error('payment declined', { user_id: 'u-1007' });
  return new Promise((resolve) => { log.on('finish', resolve); log.end(); });
}

(async () => {
  pinoLines();
  await bunyanLines();
  await winstonLines();
  for (const name of ['pino', 'bunyan', 'winston']) console.log('wrote', file(name));
})();
