package dev.edgebit.engine;

import java.nio.ByteBuffer;
import java.nio.CharBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CharsetEncoder;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;

/**
 * An edgebit artifact loaded into the native engine (libedgebit_engine through the JNI bridge libedgebit_jni).
 * Plain Java with no Android dependency, so the same class runs in the app and on a desktop JVM.
 *
 * <p>One thread at a time generates; {@link #cancel()} may be called from any thread while it does, and
 * {@link #close()} cancels a running generation and waits for it to end.
 *
 * <p>The JNI library is {@code System.loadLibrary("edgebit_jni")} (an app's packaged native libraries), or the
 * absolute path in the system property {@code edgebit.jni.library} when that is set (a host build).
 */
public final class EdgebitEngine implements AutoCloseable {
    static {
        String path = System.getProperty("edgebit.jni.library");
        if (path != null && !path.isEmpty()) {
            System.load(path);
        } else {
            System.loadLibrary("edgebit_jni");
        }
    }

    /** Held by every call that uses the engine, so close() cannot free it under a running call. */
    private final Object lock = new Object();
    /** Held only to read the handle for cancel() and to clear it in close(): cancel() never waits for lock. */
    private final Object cancelLock = new Object();
    private long handle;

    private EdgebitEngine(long handle) {
        this.handle = handle;
    }

    /**
     * Loads an artifact directory; threads 0 = the runtime's choice. The op library is the one next to
     * libedgebit_engine (built for this device) if there, else the artifact's own (manifest "op_library").
     */
    public static EdgebitEngine load(String artifactDir, int threads) {
        return load(artifactDir, threads, null);
    }

    /**
     * Loads an artifact directory with the op library at the path opLibrary (null: as above). An artifact exported on
     * a desktop carries the desktop's library; the app names the one built for its ABI.
     */
    public static EdgebitEngine load(String artifactDir, int threads, String opLibrary) {
        return load(artifactDir, threads, opLibrary, 0);
    }

    /**
     * As above, refusing (EdgebitException LOAD_FAILED, naming the figure it would need) an artifact whose estimated
     * peak memory (weights, the runtime's repacked copies, KV cache at max_seq_len, activations) is above
     * maxMemoryMb MB (10^6 bytes), so an app within a memory budget fails cleanly instead of being killed. 0 = no
     * limit.
     */
    public static EdgebitEngine load(String artifactDir, int threads, String opLibrary, long maxMemoryMb) {
        if (threads < 0) {
            throw new EdgebitException(EdgebitException.INVALID_ARGUMENT, "threads must be >= 0, got " + threads);
        }
        if (maxMemoryMb < 0) {
            throw new EdgebitException(EdgebitException.INVALID_ARGUMENT,
                                       "maxMemoryMb must be >= 0 (0 = no limit), got " + maxMemoryMb);
        }
        byte[] lib = opLibrary == null ? null : utf8(opLibrary, "opLibrary");
        return new EdgebitEngine(nativeOpen(utf8(artifactDir, "artifactDir"), threads, lib, maxMemoryMb));
    }

    /** The engine's description of the loaded artifact, one JSON object (runtime, kernel_variant, max_seq_len, ...). */
    public String infoJson() {
        synchronized (lock) {
            return nativeInfoJson(open());
        }
    }

    /**
     * Plain completion from a cleared context: the prompt is encoded as the tokenizer's post-processor does (a BOS
     * in front), then up to options.maxNewTokens tokens are sampled and streamed to onToken (may be null).
     * options null = {@link GenerationOptions#defaults()}.
     *
     * @return the generated text (the streamed pieces, concatenated)
     */
    public String generate(String prompt, GenerationOptions options, TokenCallback onToken) {
        GenerationOptions o = options == null ? GenerationOptions.defaults() : options;
        byte[] text = utf8(prompt, "prompt");
        synchronized (lock) {
            return nativeGenerate(open(), text, o, onToken);
        }
    }

    /** Starts a conversation (clears history and context); systemPrompt may be null or empty for none. */
    public void chatReset(String systemPrompt) {
        byte[] system = systemPrompt == null ? null : utf8(systemPrompt, "systemPrompt");
        synchronized (lock) {
            nativeChatReset(open(), system);
        }
    }

    /**
     * Appends a user turn in the artifact's chat template and generates the assistant's reply, keeping the
     * context between turns. A turn that does not fit fails with CONTEXT_FULL and changes nothing.
     */
    public String chatSend(String message, GenerationOptions options, TokenCallback onToken) {
        GenerationOptions o = options == null ? GenerationOptions.defaults() : options;
        byte[] text = utf8(message, "message");
        synchronized (lock) {
            return nativeChatSend(open(), text, o, onToken);
        }
    }

    /** Stops the running generation after the token being computed; forgotten if nothing is running. */
    public void cancel() {
        synchronized (cancelLock) {
            if (handle != 0) {
                nativeCancel(handle);
            }
        }
    }

    public GenerationStats stats() {
        synchronized (lock) {
            return nativeStats(open());
        }
    }

    /** Token ids of the last generation's prompt, as the engine's tokenizer encoded it. */
    public int[] lastPromptIds() {
        synchronized (lock) {
            return nativeLastPromptIds(open());
        }
    }

    /** Token ids the last generation sampled, including a final end-of-sequence id. */
    public int[] lastGeneratedIds() {
        synchronized (lock) {
            return nativeLastGeneratedIds(open());
        }
    }

    /** Cancels a running generation, waits for it, and frees the engine. Calling it again does nothing. */
    @Override
    public void close() {
        cancel();
        long h;
        synchronized (lock) {
            synchronized (cancelLock) {
                h = handle;
                handle = 0;
            }
            if (h != 0) {
                nativeClose(h);
            }
        }
    }

    private long open() {
        if (handle == 0) {
            throw new IllegalStateException("EdgebitEngine is closed");
        }
        return handle;
    }

    /**
     * Standard UTF-8 bytes for the engine. JNI's own string functions speak "modified UTF-8" (surrogate pairs as
     * two 3-byte sequences), which the engine would rightly reject as invalid; a NUL would end its C string early.
     */
    private static byte[] utf8(String s, String what) {
        if (s == null) {
            throw new EdgebitException(EdgebitException.INVALID_ARGUMENT, what + " is null");
        }
        if (s.indexOf('\0') >= 0) {
            throw new EdgebitException(EdgebitException.INVALID_ARGUMENT,
                                       what + " contains a NUL character, which the engine's C strings cannot carry");
        }
        CharsetEncoder encoder = StandardCharsets.UTF_8.newEncoder()
                .onMalformedInput(CodingErrorAction.REPORT)
                .onUnmappableCharacter(CodingErrorAction.REPORT);
        try {
            ByteBuffer bytes = encoder.encode(CharBuffer.wrap(s));
            return Arrays.copyOf(bytes.array(), bytes.limit());
        } catch (CharacterCodingException e) {
            throw new EdgebitException(EdgebitException.INVALID_ARGUMENT,
                                       what + " is not valid Unicode (an unpaired surrogate)");
        }
    }

    /** The engine's edgebit_sampling_init, for GenerationOptions.defaults(). */
    static GenerationOptions samplingDefaults() {
        return nativeSamplingDefaults();
    }

    private static native GenerationOptions nativeSamplingDefaults();

    private static native long nativeOpen(byte[] artifactDir, int threads, byte[] opLibrary, long maxMemoryMb);

    private static native void nativeClose(long handle);

    private static native String nativeInfoJson(long handle);

    private static native String nativeGenerate(long handle, byte[] prompt, GenerationOptions options,
                                                TokenCallback onToken);

    private static native void nativeChatReset(long handle, byte[] systemPrompt);

    private static native String nativeChatSend(long handle, byte[] message, GenerationOptions options,
                                                TokenCallback onToken);

    private static native void nativeCancel(long handle);

    private static native GenerationStats nativeStats(long handle);

    private static native int[] nativeLastPromptIds(long handle);

    private static native int[] nativeLastGeneratedIds(long handle);
}
