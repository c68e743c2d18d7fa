package dev.edgebit.engine;

/**
 * A failure reported by the native engine: {@link #getMessage()} is the engine's own one-line message (it names
 * the file, option or limit involved) and {@link #code()} its status (one of the constants below).
 */
public final class EdgebitException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    /** The engine's EDGEBIT_E_* status codes (edgebit_engine.h). */
    public static final int INVALID_ARGUMENT = -1;
    public static final int ARTIFACT = -2;
    public static final int TOKENIZER = -3;
    public static final int CONTEXT_FULL = -4;
    public static final int RUNTIME = -5;
    /**
     * edgebit_engine_open failed. The C API returns only a message there (no status), because a load can fail
     * in the artifact, the tokenizer or the runtime; the message says which.
     */
    public static final int LOAD_FAILED = -100;

    private final int code;

    /** Called by the JNI bridge. */
    public EdgebitException(int code, String message) {
        super(message);
        this.code = code;
    }

    public int code() {
        return code;
    }
}
