'use strict';
// What the numbers were taken on, and how busy the machine was.
const fs = require('fs');
const os = require('os');
const { execFileSync } = require('child_process');

function readFile(file) {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}

function cpuInfo() {
  const text = readFile('/proc/cpuinfo');
  const field = (name) => (new RegExp(`^${name}\\s*:\\s*(.*)$`, 'm').exec(text) || [])[1];
  const flags = (field('flags') || '').split(/\s+/);
  const isa = ['avx2', 'avx512f', 'avx512_vnni', 'avx512_bf16', 'amx_bf16', 'amx_int8', 'avx_vnni'].filter((f) => flags.includes(f));
  let lscpu = '';
  try {
    lscpu = execFileSync('lscpu', { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  } catch {
    /* optional */
  }
  const ls = (name) => (new RegExp(`^${name}:\\s*(.*)$`, 'm').exec(lscpu) || [])[1];
  return {
    model: field('model name') || os.cpus()[0]?.model || 'unknown',
    vendor: field('vendor_id'),
    family: field('cpu family'),
    modelNumber: field('model'),
    logicalCores: os.cpus().length,
    threadsPerCore: ls('Thread\\(s\\) per core') ? Number(ls('Thread\\(s\\) per core')) : undefined,
    hypervisor: ls('Hypervisor vendor') || (flags.includes('hypervisor') ? 'yes' : undefined),
    isa,
  };
}

function machineInfo() {
  const mem = readFile('/proc/meminfo');
  const memTotalKb = Number((/^MemTotal:\s+(\d+)/m.exec(mem) || [])[1] || 0);
  return {
    cpu: cpuInfo(),
    ramGiB: Math.round((memTotalKb / 1024 / 1024) * 10) / 10,
    kernel: `${os.type()} ${os.release()}`,
    node: process.version,
    hostname: os.hostname(),
  };
}

/** Jiffies (busy, total) summed over all CPUs. */
function cpuTimes() {
  const line = readFile('/proc/stat').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  const idle = line[3] + (line[4] || 0);
  const total = line.reduce((a, b) => a + b, 0);
  return { busy: total - idle, total };
}

/** Fraction of the CPUs busy over `ms` (while nothing of ours runs: other load on the machine). */
async function sampleBusy(ms = 2000) {
  const a = cpuTimes();
  await new Promise((r) => setTimeout(r, ms));
  const b = cpuTimes();
  const total = b.total - a.total;
  return {
    busyFraction: total > 0 ? (b.busy - a.busy) / total : 0,
    loadavg: os.loadavg().map((x) => Math.round(x * 100) / 100),
  };
}

function memAvailableMiB() {
  const text = fs.readFileSync('/proc/meminfo', 'utf8');
  return Number((/^MemAvailable:\s+(\d+)/m.exec(text) || [])[1] || 0) / 1024;
}

module.exports = { machineInfo, sampleBusy, cpuTimes, memAvailableMiB };
