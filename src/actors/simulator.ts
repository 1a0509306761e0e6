/**
 * simulator: the TWS wire-protocol simulator as a component, so `npm start`
 * has a market to trade without TWS. Its settings are `keel sim`'s config
 * (config/sim.yaml); the control API is served when `controlPort` is set.
 * Point ib_connection at a real TWS or Gateway and drop this component to
 * trade a paper account instead.
 *
 * A port another process holds (or one it may not use) is a permanent
 * failure naming the port and the setting: a restart would only meet it
 * again.
 */
import { startControlServer, type ControlServer } from '../sim/control.js';
import type { z } from 'zod';
import { simConfigSchema } from '../sim/config.js';
import { TwsSimulator } from '../sim/server.js';
import { listenFailure } from '../supervision/permanent.js';
import { serviceLogic } from '../supervision/service.js';

/** `keel sim`'s config but its clock: in keel's tree the market runs on the daemon's clock (the config's top-level `clock`), or the two would disagree. */
export const simulatorSettings = simConfigSchema.omit({ clock: true });

type SimulatorSettings = z.output<typeof simulatorSettings>;

const HOST = '127.0.0.1';

export const simulatorLogic = serviceLogic<SimulatorSettings>(async ({ id, settings, clock, log }) => {
  const sim = new TwsSimulator({ ...settings, clock, log });
  try {
    await sim.listen(settings.port);
  } catch (error) {
    await sim.close();
    throw listenFailure(error, { what: 'port', host: HOST, port: settings.port, setting: `components.${id}.settings.port`, holder: 'another keel, or TWS itself?' });
  }
  let control: ControlServer | undefined;
  if (settings.controlPort !== undefined) {
    try {
      control = await startControlServer(sim, { port: settings.controlPort, log });
    } catch (error) {
      // The market is listening already: close it, or the next start finds its own port taken.
      await sim.close();
      throw listenFailure(error, {
        what: 'the control API port',
        host: HOST,
        port: settings.controlPort,
        setting: `components.${id}.settings.controlPort`,
        holder: 'another keel, or keel sim?',
      });
    }
  }
  return {
    async stop() {
      await control?.close();
      await sim.close();
    },
  };
});
