package dev.edgebit.engine;

/**
 * Sampling settings, named as in {@code edgebit run}. The defaults are the engine's (edgebit_sampling_init):
 * greedy, 128 new tokens, no top-k/top-p, no repetition penalty. The engine checks the ranges and reports an
 * out-of-range value as an {@link EdgebitException} with code INVALID_ARGUMENT.
 */
public final class GenerationOptions {
    public int maxNewTokens = 128;
    /** 0 = greedy. The usual BitNet sample settings are 0.8 with repetitionPenalty 1.1. */
    public float temperature = 0f;
    /** 0 = off. */
    public int topK = 0;
    /** 1 = off. */
    public float topP = 1f;
    /** 1 = off; above 1 makes already seen tokens less likely. */
    public float repetitionPenalty = 1f;
    /** The sampler's seed: the same seed gives the same tokens. */
    public long seed = 0;

    public static GenerationOptions greedy(int maxNewTokens) {
        GenerationOptions o = new GenerationOptions();
        o.maxNewTokens = maxNewTokens;
        return o;
    }
}
