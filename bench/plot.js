'use strict';
// Plots a bench result JSON with gnuplot (Debian package gnuplot-nox, pngcairo
// terminal): <out>/scaling.png (speedup vs workers, one line per peer, plus
// the ideal line) and <out>/throughput.png (tiny tasks/s per peer).
//
//   node bench/plot.js [bench/results/latest.json] [outdir]
//
// The data files and the gnuplot script are written next to the PNGs with a
// .tmp suffix (git-ignored) so the plot can be re-run or inspected.

const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const COLORS = {
  threader: '#d62728', piscina: '#1f77b4', tinypool: '#2ca02c',
  workerpool: '#9467bd', 'isolated-vm': '#ff7f0e', serial: '#7f7f7f',
};

// Single-quoted gnuplot string (paths: no escapes) and double-quoted one
// (titles: "\n" is a line break).
const q = s => `'${String(s).replace(/'/g, "''")}'`;
const qq = s => `"${String(s).replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`;

function plot(jsonPath, outDir) {
  const probe = spawnSync('gnuplot', ['--version'], { encoding: 'utf8' });
  if (probe.error || probe.status !== 0) {
    return { ok: false, reason: 'gnuplot not found; install it with: apt-get install -y gnuplot-nox' };
  }
  const res = JSON.parse(fs.readFileSync(jsonPath, 'utf8'));
  const m = res.machine;
  const machine = `${m.cpuModel}, ${m.cores} cores, Node ${m.node}, ${res.date.slice(0, 10)}${res.quick ? ' (quick)' : ''}`;
  fs.mkdirSync(outDir, { recursive: true });
  const files = [];
  const script = ['set terminal pngcairo size 960,540 noenhanced font "DejaVu Sans,11"', 'set grid ytics lc rgb "#dddddd"', 'set key top left'];

  // Throughput bars (pools only: the serial loop is a direct call, orders of
  // magnitude off this scale; its number is in the table).
  const bars = Object.entries(res.peers)
    .filter(([name, e]) => name !== 'serial' && e.available && e.throughput)
    .map(([name, e]) => [name, e.throughput.tasksPerS]);
  if (bars.length) {
    const dat = path.join(outDir, 'throughput.dat.tmp');
    fs.writeFileSync(dat, bars.map(([n, v]) =>
      `"${n}" ${v.toFixed(1)} ${parseInt((COLORS[n] || '#444444').slice(1), 16)}`).join('\n') + '\n');
    const png = path.join(outDir, 'throughput.png');
    const max = Math.max(...bars.map(b => b[1]), res.peers.threader?.available ? res.targets.tasksPerS : 0);
    script.push(
      `set output ${q(png)}`,
      `set title ${qq(`Tiny-task throughput: ${res.plan.tinyTasks.toLocaleString('en-US')} tasks of x => x + 1 in flight\n${machine}`)}`,
      'set ylabel "tasks per second (higher is better)"', 'unset xlabel',
      `set yrange [0:${Math.ceil(max * 1.15)}]`, 'set xrange [-0.6:*]', 'set boxwidth 0.6', 'set style fill solid 0.85 border -1',
      'set format y "%.0s%c"', 'unset key', 'unset arrow', 'unset label',
    );
    if (res.peers.threader?.available) {
      script.push(
        `set arrow from graph 0, first ${res.targets.tasksPerS} to graph 1, first ${res.targets.tasksPerS} nohead dt 2 lw 1.5 lc rgb "#d62728"`,
        `set label "Threader target ${res.targets.tasksPerS / 1000}k tasks/s" at graph 0.99, first ${res.targets.tasksPerS} right offset 0,0.7 front tc rgb "#d62728"`,
      );
    }
    script.push(
      `plot ${q(dat)} using 0:2:3:xtic(1) with boxes lc rgb variable notitle, ` +
      `'' using 0:2:(sprintf("%.1fk", $2/1000)) with labels offset 0,0.8 notitle`,
      'unset arrow', 'unset label', 'set format y "%g"', 'set autoscale', 'set key top left',
    );
    files.push(png);
  }

  // Scaling curve.
  const curves = Object.entries(res.peers)
    .filter(([, e]) => e.available && e.scaling && e.scaling.length);
  if (curves.length) {
    const png = path.join(outDir, 'scaling.png');
    const plots = [];
    for (const [name, e] of curves) {
      const dat = path.join(outDir, `scaling-${name}.dat.tmp`);
      fs.writeFileSync(dat, e.scaling.map(p => `${p.workers} ${p.speedup.toFixed(4)}`).join('\n') + '\n');
      plots.push(`${q(dat)} using 1:2 with linespoints lw 2 pt 7 ps 1.2 lc rgb "${COLORS[name] || '#444444'}" title ${qq(name)}`);
    }
    const N = m.cores;
    const top = Math.max(N, ...curves.flatMap(([, e]) => e.scaling.map(p => p.speedup)));
    script.push(
      `set output ${q(png)}`,
      `set title ${qq(`CPU-bound scaling: ${res.plan.scalingTasks} tasks of about ${res.serial.perTaskS.toFixed(2)} s each, speedup vs a serial loop\n${machine}`)}`,
      'set xlabel "workers"', 'set ylabel "speedup (x)"',
      `set xrange [0.8:${N + 0.2}]`, `set yrange [0:${Math.ceil(top * 2 + 1) / 2}]`, 'set xtics 1', `set ytics ${N <= 4 ? 0.5 : 1}`, 'set key top left',
      `plot x with lines dt 2 lc rgb "#999999" title "ideal", ${plots.join(', ')}`,
    );
    files.push(png);
  }

  if (!files.length) return { ok: false, reason: 'nothing to plot' };
  const gp = path.join(outDir, 'plot.gp.tmp');
  fs.writeFileSync(gp, script.join('\n') + '\n');
  const r = spawnSync('gnuplot', [gp], { encoding: 'utf8' });
  if (r.status !== 0) return { ok: false, reason: `gnuplot failed: ${(r.stderr || '').trim().split('\n').slice(-3).join(' | ')}` };
  return { ok: true, files };
}

module.exports = { plot };

if (require.main === module) {
  const json = process.argv[2] || path.join(__dirname, 'results', 'latest.json');
  const out = process.argv[3] || path.dirname(json);
  const r = plot(json, out);
  if (!r.ok) { process.stderr.write(`plot: ${r.reason}\n`); process.exit(1); }
  process.stdout.write(r.files.join('\n') + '\n');
}
