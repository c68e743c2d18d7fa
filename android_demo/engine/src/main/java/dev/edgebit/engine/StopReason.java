package dev.edgebit.engine;

/** Why the last generation ended; the order is the engine's edgebit_stop_reason values 0..5. */
public enum StopReason {
    NONE,
    EOS,
    MAX_TOKENS,
    CONTEXT,
    CANCELLED,
    ERROR;

    static StopReason of(int value) {
        StopReason[] all = values();
        if (value < 0 || value >= all.length) {
            throw new IllegalArgumentException("unknown edgebit stop reason " + value);
        }
        return all[value];
    }
}
