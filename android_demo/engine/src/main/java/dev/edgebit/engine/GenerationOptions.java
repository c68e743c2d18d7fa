package dev.edgebit.engine;

/**
 * Sampling settings, named as in {@code edgebit run}. Made from the engine's own defaults
 * (edgebit_sampling_init, read through the bridge, so the two cannot drift apart), then changed field by field.
 * The engine checks the ranges: an out-of-range value is an {@link EdgebitException} with code INVALID_ARGUMENT.
 */
public final class GenerationOptions {
    public int maxNewTokens;
    /** 0 = greedy. The usual BitNet sample settings are 0.8 with repetitionPenalty 1.1. */
    public float temperature;
    /** 0 = off. */
    public int topK;
    /** 1 = off. */
    public float topP;
    /** 1 = off; above 1 makes already seen tokens less likely. */
    public float repetitionPenalty;
    /** The sampler's seed: the same seed gives the same tokens. */
    public long seed;
    /** Do not stop at end-of-sequence or end-of-turn tokens (benchmarks of a fixed length). */
    public boolean ignoreEos;

    /** Called by the JNI bridge, in edgebit_sampling field order. */
    GenerationOptions(int maxNewTokens, float temperature, int topK, float topP, float repetitionPenalty, long seed,
                      boolean ignoreEos) {
        this.maxNewTokens = maxNewTokens;
        this.temperature = temperature;
        this.topK = topK;
        this.topP = topP;
        this.repetitionPenalty = repetitionPenalty;
        this.seed = seed;
        this.ignoreEos = ignoreEos;
    }

    /** The engine's defaults: greedy, as many new tokens as `edgebit run` makes by default. */
    public static GenerationOptions defaults() {
        return EdgebitEngine.samplingDefaults();
    }

    /** Greedy decoding of at most maxNewTokens tokens: the same tokens as `edgebit run` for the same prompt. */
    public static GenerationOptions greedy(int maxNewTokens) {
        GenerationOptions o = defaults();
        o.temperature = 0f;
        o.maxNewTokens = maxNewTokens;
        return o;
    }
}
