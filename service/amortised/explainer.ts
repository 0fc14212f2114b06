/**
 * A trained amortised explainer as the explainers see it (explainers/amortised/types.ts): the game it
 * learned, the model version it belongs to, its validation, and `estimate`, which assembles the
 * network's inputs (a row and, when used, its probe values) and runs the network
 * (models/amortised/estimator.ts) on them. Wrapping a network makes it a served one: its weights are
 * final (a trained network after training, or one loaded from its folder), so the constructor calls
 * its serve(), which packs it into the fused Dense kernel unless PREDICT_KERNEL=tfjs.
 */
import type { Rows } from '../../explainers/types.js';
import type { AmortisedGame } from '../../explainers/amortised/game.js';
import { networkInputs } from '../../explainers/amortised/training.js';
import type { AmortisedExplainer, AmortisedValidation } from '../../explainers/amortised/types.js';
import type { AmortisedNetwork } from '../../models/amortised/estimator.js';

export class ServedAmortisedExplainer implements AmortisedExplainer {
  validation?: AmortisedValidation;

  constructor(
    readonly game: AmortisedGame,
    readonly modelName: string,
    readonly modelVersion: string,
    readonly network: AmortisedNetwork,
    readonly probes: boolean,
    /** Content hash of the stored explainer (empty until saved). */
    public id = '',
  ) {
    network.serve();
  }

  estimate(rows: Rows, probes?: Float32Array): Promise<Float32Array> {
    const K = this.game.outputs.length;
    const M = this.game.players.length;
    if (rows.d !== this.game.nFeatures) throw new Error(`rows have ${rows.d} values each but the explainer takes ${this.game.nFeatures}`);
    if (this.probes && !probes) throw new Error('this explainer needs each row\'s probe values');
    return this.network.estimate(networkInputs(rows, this.probes ? probes : undefined, K, M), rows.n);
  }

  dispose(): void {
    this.network.dispose();
  }
}
