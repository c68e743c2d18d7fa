package dev.edgebit.harness;

import static dev.edgebit.harness.Checks.expect;
import static dev.edgebit.harness.Checks.expectEqual;
import static dev.edgebit.harness.Checks.expectThrows;

import dev.edgebit.engine.EdgebitEngine;
import dev.edgebit.engine.EdgebitException;
import dev.edgebit.engine.GenerationOptions;
import dev.edgebit.engine.GenerationStats;
import dev.edgebit.engine.StopReason;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Drives EdgebitEngine (the Android app's engine class, unchanged) through its JNI bridge against the real
 * engine library, and holds it to what `edgebit run` printed for the same artifacts and prompts.
 * Usage: EngineHarness ROOT THREADS [OP_LIBRARY_DIR], ROOT as test-on-jvm.sh lays it out (see Expected).
 * With OP_LIBRARY_DIR, artifacts load with the op library found there (as the app loads a desktop's artifact on a
 * phone) instead of their own.
 */
public final class EngineHarness {
    /** Long enough that a generation still runs when a cancel arrives; within every artifact's context. */
    private static final int LONG_RUN = 200;
    private static final int CANCEL_AT = 3;
    private static final Pattern HAS_CHAT = Pattern.compile("\"has_chat_template\"\\s*:\\s*true");
    private static final Pattern KERNEL_VARIANT = Pattern.compile("\"kernel_variant\"\\s*:\\s*\"([^\"]*)\"");

    private final Checks checks = new Checks();
    private final int threads;
    /** null: each artifact's own op library; else the dir holding the ones built for this machine, as the app does. */
    private final Path opLibraryDir;

    private EngineHarness(int threads, Path opLibraryDir) {
        this.threads = threads;
        this.opLibraryDir = opLibraryDir;
    }

    public static void main(String[] args) throws Exception {
        if (args.length != 2 && args.length != 3) {
            System.err.println("usage: EngineHarness ROOT THREADS [OP_LIBRARY_DIR]");
            System.exit(2);
        }
        Path root = Paths.get(args[0]);
        EngineHarness h = new EngineHarness(Integer.parseInt(args[1]), args.length == 3 ? Paths.get(args[2]) : null);
        h.badArtifacts(root);
        for (Expected.Artifact a : Expected.artifacts(root)) {
            h.artifact(a);
        }
        System.exit(h.checks.finish() ? 0 : 1);
    }

    /** The pieces a generation streamed, with their token ids. */
    private static final class Stream {
        final List<String> pieces = new ArrayList<>();
        final List<Integer> ids = new ArrayList<>();

        String joined() {
            return String.join("", pieces);
        }

        /** The sampled ids streamed (without the -1 of a final flush of held-back bytes). */
        int[] idArray() {
            return ids.stream().mapToInt(Integer::intValue).filter(id -> id >= 0).toArray();
        }
    }

    private void badArtifacts(Path root) throws Exception {
        String missing = Expected.read(root.resolve("bad-dir-path.txt"));
        String runnerStderr = Expected.read(root.resolve("bad-dir-runner-stderr.txt"));
        checks.check("a missing artifact dir raises EdgebitException with the engine's message", () -> {
            EdgebitException e = expectThrows(EdgebitException.class, () -> EdgebitEngine.load(missing, threads),
                                              "load(" + missing + ")");
            expectEqual(EdgebitException.LOAD_FAILED, e.code(), "code");
            String msg = e.getMessage();
            expect(msg != null && !msg.isEmpty() && !msg.contains("\n"), "one non-empty line, got: " + msg);
            // The dir's name has non-ASCII letters and an emoji: it survives only a proper UTF-8 conversion.
            expect(msg.contains(missing), "message names the dir " + missing + ": " + msg);
            expect(runnerStderr.contains(msg), "edgebit-runner printed the same message for the same dir; runner: "
                                               + runnerStderr.trim() + " | java: " + msg);
        });
        String corrupt = Expected.read(root.resolve("corrupt-dir-path.txt"));
        checks.check("an artifact with a corrupt manifest.json raises EdgebitException naming it", () -> {
            EdgebitException e = expectThrows(EdgebitException.class, () -> EdgebitEngine.load(corrupt, threads),
                                              "load(" + corrupt + ")");
            expect(e.getMessage().contains("manifest.json"), "message names manifest.json: " + e.getMessage());
        });
    }

    private void artifact(Expected.Artifact a) {
        String p = a.label + ": ";
        EdgebitEngine[] holder = new EdgebitEngine[1];
        checks.check(p + "load, info and load stats", () -> {
            holder[0] = EdgebitEngine.load(a.dir, threads, opLibrary(a));
            String info = holder[0].infoJson();
            expect(info.contains("\"runtime\"") && info.contains(a.runtime), "info names runtime " + a.runtime
                                                                             + ": " + info);
            Matcher variant = KERNEL_VARIANT.matcher(info);
            expect(variant.find(), "info names the kernel variant: " + info);
            System.out.println("INFO " + p + "kernel variant " + variant.group(1));
            GenerationStats s = holder[0].stats();
            expect(s.maxSeqLen > 0 && s.loadMs > 0 && s.rssAfterLoadBytes > 0,
                   "max_seq_len, load time and RSS after load are positive");
            expectEqual(StopReason.NONE, s.stopReason, "stop reason before any generation");
        });
        EdgebitEngine engine = holder[0];
        if (engine == null) {
            return;
        }
        checks.check(p + "a memory budget below the artifact's need is refused, naming the figure", () -> {
            EdgebitException e = expectThrows(EdgebitException.class,
                                              () -> EdgebitEngine.load(a.dir, threads, opLibrary(a), 1),
                                              "load(" + a.dir + ", maxMemoryMb 1)");
            expectEqual(EdgebitException.LOAD_FAILED, e.code(), "code");
            expect(e.getMessage().contains("MB"), "the message names the MB it would need: " + e.getMessage());
        });
        for (Expected.Case c : a.cases) {
            greedyCase(p + c.name + ": ", engine, c);
        }
        Expected.Case first = a.cases.get(0);
        cancellation(p, engine, first);
        errors(p, engine);
        chat(p, engine, a.chat);
        closing(p, engine, first);
    }

    private String opLibrary(Expected.Artifact a) {
        if (opLibraryDir == null) {
            return null;
        }
        String name = a.runtime.equals("executorch") ? "libedgebit_executorch.so" : "libedgebit_ort.so";
        return opLibraryDir.resolve(name).toString();
    }

    private void greedyCase(String p, EdgebitEngine engine, Expected.Case c) {
        Stream stream = new Stream();
        String[] text = new String[1];
        checks.check(p + "greedy generate gives edgebit run's text and ids", () -> {
            text[0] = engine.generate(c.prompt, GenerationOptions.greedy(c.maxNewTokens), (piece, id) -> {
                stream.pieces.add(piece);
                stream.ids.add(id);
                return true;
            });
            expectEqual(c.promptIds, engine.lastPromptIds(), "prompt ids");
            expectEqual(c.generatedIds, engine.lastGeneratedIds(), "generated ids");
            expectEqual(c.text, text[0], "text");
        });
        checks.check(p + "the callback streams the text token by token", () -> {
            expect(text[0] != null, "generation ran");
            expectEqual(text[0], stream.joined(), "streamed pieces, concatenated");
            // Every sampled id is streamed except a final end-of-sequence id.
            GenerationStats s = engine.stats();
            int[] generated = engine.lastGeneratedIds();
            int streamed = s.stopReason == StopReason.EOS ? generated.length - 1 : generated.length;
            expectEqual(Arrays.toString(Arrays.copyOf(generated, streamed)), Arrays.toString(stream.idArray()),
                        "streamed token ids");
        });
        checks.check(p + "stats after the generation", () -> {
            GenerationStats s = engine.stats();
            StopReason want = c.generatedIds.length == c.maxNewTokens ? StopReason.MAX_TOKENS : StopReason.EOS;
            expectEqual(want, s.stopReason, "stop reason");
            expectEqual((long) c.promptIds.length, s.promptTokens, "prompt tokens");
            expectEqual((long) c.generatedIds.length, s.generatedTokens, "generated tokens");
            expect(s.timeToFirstTokenMs > 0 && s.prefillTokensPerSecond > 0, "TTFT and prefill speed are positive");
            expect(c.generatedIds.length < 2 || s.decodeTokensPerSecond > 0, "decode speed is positive");
            expect(s.peakRssBytes >= s.rssAfterLoadBytes, "peak RSS >= RSS after load");
            System.out.printf("INFO %sTTFT %.1f ms, prefill %.0f tok/s, decode %.0f tok/s, peak RSS %d MB%n", p,
                              s.timeToFirstTokenMs, s.prefillTokensPerSecond, s.decodeTokensPerSecond,
                              s.peakRssBytes >> 20);
        });
    }

    private void cancellation(String p, EdgebitEngine engine, Expected.Case c) {
        checks.check(p + "cancel() from another thread stops mid-stream", () -> {
            CountDownLatch reached = new CountDownLatch(1);
            CountDownLatch cancelled = new CountDownLatch(1);
            Thread canceller = new Thread(() -> {
                try {
                    reached.await();
                    engine.cancel();
                    cancelled.countDown();
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
            });
            canceller.start();
            Stream stream = new Stream();
            String text = engine.generate(c.prompt, GenerationOptions.greedy(LONG_RUN), (piece, id) -> {
                stream.pieces.add(piece);
                if (stream.pieces.size() == CANCEL_AT) {
                    reached.countDown();
                    // Hold this token until cancel() has returned, so the stop point does not depend on timing.
                    awaitOrFail(cancelled, "the cancelling thread");
                }
                return true;
            });
            canceller.join(10_000);
            GenerationStats s = engine.stats();
            expectEqual(StopReason.CANCELLED, s.stopReason, "stop reason");
            // The engine stops after the token being computed: at most one more after the cancel.
            expect(s.generatedTokens >= CANCEL_AT && s.generatedTokens <= CANCEL_AT + 1,
                   "stopped at token " + CANCEL_AT + " or the next, not after " + s.generatedTokens);
            expect(c.text.startsWith(text), "the cancelled text is a prefix of the full greedy text: \"" + text + "\"");
        });
        checks.check(p + "a callback returning false stops after that token", () -> {
            Stream stream = new Stream();
            String text = engine.generate(c.prompt, GenerationOptions.greedy(LONG_RUN), (piece, id) -> {
                stream.pieces.add(piece);
                stream.ids.add(id);
                return stream.pieces.size() < CANCEL_AT;
            });
            expectEqual(StopReason.CANCELLED, engine.stats().stopReason, "stop reason");
            expectEqual(CANCEL_AT, stream.pieces.size(), "pieces streamed");
            expectEqual(Arrays.toString(Arrays.copyOf(c.generatedIds, CANCEL_AT)), Arrays.toString(stream.idArray()),
                        "the first token ids");
            expectEqual(stream.joined(), text, "returned text");
        });
        checks.check(p + "the next generation after a cancel runs to the end", () -> {
            String text = engine.generate(c.prompt, GenerationOptions.greedy(c.maxNewTokens), null);
            expectEqual(c.text, text, "text");
        });
    }

    private void errors(String p, EdgebitEngine engine) {
        checks.check(p + "an out-of-range option raises EdgebitException(INVALID_ARGUMENT) with the engine's message",
                     () -> {
            GenerationOptions bad = GenerationOptions.greedy(4);
            bad.temperature = -1f;
            EdgebitException e = expectThrows(EdgebitException.class, () -> engine.generate("In", bad, null),
                                              "temperature -1");
            expectEqual(EdgebitException.INVALID_ARGUMENT, e.code(), "code");
            expect(!e.getMessage().isEmpty() && !e.getMessage().contains("\n"), "one line: " + e.getMessage());
        });
        checks.check(p + "a NUL in the prompt is refused before it reaches the engine", () -> {
            EdgebitException e = expectThrows(EdgebitException.class,
                                              () -> engine.generate("In\0the", GenerationOptions.greedy(4), null),
                                              "prompt with NUL");
            expectEqual(EdgebitException.INVALID_ARGUMENT, e.code(), "code");
        });
        checks.check(p + "an exception thrown by the callback stops the generation and reaches the caller", () -> {
            IllegalStateException e = expectThrows(IllegalStateException.class,
                () -> engine.generate("In the beginning", GenerationOptions.greedy(LONG_RUN), (piece, id) -> {
                    throw new IllegalStateException("from the callback");
                }), "throwing callback");
            expectEqual("from the callback", e.getMessage(), "message");
            expectEqual(StopReason.CANCELLED, engine.stats().stopReason, "stop reason");
            expectEqual(1L, engine.stats().generatedTokens, "tokens sampled");
        });
    }

    /**
     * An artifact with a chat template converses as `edgebit-runner --chat` does, keeping its context between
     * turns; one without says so with an exception.
     */
    private void chat(String p, EdgebitEngine engine, Expected.Chat expected) {
        boolean hasChat = HAS_CHAT.matcher(engine.infoJson()).find();
        if (expected == null) {
            checks.check(p + "chat on an artifact without a chat template raises EdgebitException(ARTIFACT)", () -> {
                expect(!hasChat, "the engine reports no chat template");
                EdgebitException e = expectThrows(EdgebitException.class, () -> engine.chatReset(null), "chatReset");
                expectEqual(EdgebitException.ARTIFACT, e.code(), "code");
            });
            return;
        }
        checks.check(p + "a two-turn chat gives edgebit-runner --chat's replies, keeping the context", () -> {
            expect(hasChat, "the engine reports a chat template");
            engine.chatReset(expected.system);
            Stream stream = new Stream();
            String first = engine.chatSend(expected.turn1, GenerationOptions.greedy(expected.maxNewTokens),
                                           (piece, id) -> {
                                               stream.pieces.add(piece);
                                               return true;
                                           });
            expectEqual(first, stream.joined(), "streamed first reply");
            long afterFirst = engine.stats().contextTokens;
            String second = engine.chatSend(expected.turn2, GenerationOptions.greedy(expected.maxNewTokens), null);
            GenerationStats s = engine.stats();
            expect(s.contextTokens >= afterFirst + s.promptTokens,
                   "the second turn's context holds the first (" + afterFirst + " then " + s.contextTokens + ")");
            expectEqual(expected.runnerStdout, first + "\n" + second + "\n", "both replies");
        });
    }

    private void closing(String p, EdgebitEngine engine, Expected.Case c) {
        checks.check(p + "close() from another thread mid-stream cancels, waits for the generation, then frees", () -> {
            Thread[] closer = new Thread[1];
            Stream stream = new Stream();
            engine.generate(c.prompt, GenerationOptions.greedy(LONG_RUN), (piece, id) -> {
                stream.pieces.add(piece);
                if (stream.pieces.size() == CANCEL_AT) {
                    closer[0] = new Thread(engine::close);
                    closer[0].start();
                    // BLOCKED = close() has cancelled and now waits for this generation to return.
                    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
                    while (closer[0].getState() != Thread.State.BLOCKED && System.nanoTime() < deadline) {
                        Thread.yield();
                    }
                }
                return true;
            });
            closer[0].join(10_000);
            expect(!closer[0].isAlive(), "close() returned after the generation");
            expect(stream.pieces.size() <= CANCEL_AT + 1, "stopped early, after " + stream.pieces.size() + " pieces");
            expectThrows(IllegalStateException.class, engine::stats, "stats() after close");
            engine.close();
        });
    }

    private static void awaitOrFail(CountDownLatch latch, String what) {
        try {
            if (!latch.await(10, TimeUnit.SECONDS)) {
                throw new Checks.Failure("timed out waiting for " + what);
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new Checks.Failure("interrupted waiting for " + what);
        }
    }
}
