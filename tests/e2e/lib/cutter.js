// A TCP relay between the browser and tokenrelay that can cut every open connection at once,
// as a network drop does. Chromium's EventSource then reconnects by itself and sends
// Last-Event-ID: the resume path a real blip takes. (Going offline alone leaves open
// connections up, and the page's own "drop connection" resumes with ?last_event_id=.)

import net from 'node:net';

export class Cutter {
  static async start(target) {
    const url = new URL(target);
    const cutter = new Cutter();
    cutter.server = net.createServer((client) => {
      const upstream = net.connect(Number(url.port), url.hostname);
      const pair = [client, upstream];
      cutter.open.add(pair);
      const end = () => {
        cutter.open.delete(pair);
        client.destroy();
        upstream.destroy();
      };
      client.pipe(upstream);
      upstream.pipe(client);
      for (const socket of pair) {
        socket.on('error', end);
        socket.on('close', end);
      }
    });
    await new Promise((resolve) => cutter.server.listen(0, '127.0.0.1', resolve));
    cutter.url = `http://127.0.0.1:${cutter.server.address().port}`;
    return cutter;
  }

  constructor() {
    this.open = new Set();
    this.cuts = 0;
  }

  /** Destroys every open connection; answers how many there were. */
  cut() {
    const count = this.open.size;
    for (const [client, upstream] of this.open) {
      client.destroy();
      upstream.destroy();
    }
    this.open.clear();
    this.cuts += count;
    return count;
  }

  close() {
    this.cut();
    return new Promise((resolve) => this.server.close(resolve));
  }
}
