package dev.edgebit.engine;

/** Receives generated text as it is decoded, on the thread that called generate or chatSend. */
@FunctionalInterface
public interface TokenCallback {
    /**
     * @param text whole characters only (a character split across tokens arrives with the token that completes
     *     it), possibly empty; end-of-sequence and end-of-turn tokens are not passed
     * @param tokenId the sampled token, or -1 for one last call with bytes still held back when the generation
     *     ended (an incomplete character then arrives as U+FFFD)
     * @return true to go on, false to stop the generation (its stop reason becomes CANCELLED)
     */
    boolean onToken(String text, int tokenId);
}
