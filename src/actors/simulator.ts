/**
 * simulator: the TWS wire-protocol simulator as a component, so `npm start`
 * has a market to trade without TWS. Its settings are `keel sim`'s config
 * (config/sim.yaml); the control API is served when `controlPort` is set.
 * Point ib_connection at a real TWS or Gateway and drop this component to
 * trade a paper account instead.
 */
import { startControlServer } from '../sim/control.js';
import { simConfigSchema, type SimConfig } from '../sim/config.js';
import { TwsSimulator } from '../sim/server.js';
import { serviceLogic } from '../supervision/service.js';

export const simulatorSettings = simConfigSchema;

export const simulatorLogic = serviceLogic<SimConfig>(async ({ settings, clock, log }) => {
  const sim = new TwsSimulator({ ...settings, clock, log });
  await sim.listen(settings.port);
  const control = settings.controlPort === undefined ? undefined : await startControlServer(sim, { port: settings.controlPort, log });
  return {
    async stop() {
      await control?.close();
      await sim.close();
    },
  };
});
