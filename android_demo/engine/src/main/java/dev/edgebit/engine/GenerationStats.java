package dev.edgebit.engine;

/** The engine's figures (edgebit_stats): the same ones {@code edgebit profile} reports from a device. */
public final class GenerationStats {
    public final double loadMs;
    /** Last generation: prompt submitted to first token sampled. */
    public final double timeToFirstTokenMs;
    public final double prefillTokensPerSecond;
    /** Tokens after the first over their time; 0 when only one was sampled. */
    public final double decodeTokensPerSecond;
    public final long promptTokens;
    /** Tokens sampled by the last call, including a final end-of-sequence token (which is not streamed). */
    public final long generatedTokens;
    public final long contextTokens;
    public final long maxSeqLen;
    /** VmRSS after load; 0 where /proc is missing. */
    public final long rssAfterLoadBytes;
    /** VmHWM (peak resident memory) now. */
    public final long peakRssBytes;
    public final StopReason stopReason;

    /** Called by the JNI bridge, in edgebit_stats field order. */
    GenerationStats(double loadMs, double timeToFirstTokenMs, double prefillTokensPerSecond,
                    double decodeTokensPerSecond, long promptTokens, long generatedTokens, long contextTokens,
                    long maxSeqLen, long rssAfterLoadBytes, long peakRssBytes, int stopReason) {
        this.loadMs = loadMs;
        this.timeToFirstTokenMs = timeToFirstTokenMs;
        this.prefillTokensPerSecond = prefillTokensPerSecond;
        this.decodeTokensPerSecond = decodeTokensPerSecond;
        this.promptTokens = promptTokens;
        this.generatedTokens = generatedTokens;
        this.contextTokens = contextTokens;
        this.maxSeqLen = maxSeqLen;
        this.rssAfterLoadBytes = rssAfterLoadBytes;
        this.peakRssBytes = peakRssBytes;
        this.stopReason = StopReason.of(stopReason);
    }
}
