package dev.edgebit.harness;

import java.util.Arrays;
import java.util.Objects;

/** Runs named checks, prints one line each, and closes with the `N passed, N failed` line that CI reads. */
final class Checks {
    /** A failed expectation: its message says what differed. */
    static final class Failure extends RuntimeException {
        private static final long serialVersionUID = 1L;

        Failure(String message) {
            super(message);
        }
    }

    interface Body {
        void run() throws Exception;
    }

    private int passed;
    private int failed;

    void check(String name, Body body) {
        try {
            body.run();
            passed++;
            System.out.println("PASS " + name);
        } catch (Throwable t) {
            failed++;
            String why = t instanceof Failure ? t.getMessage() : t.getClass().getName() + ": " + t.getMessage();
            System.out.println("FAIL " + name + ": " + why);
        }
        System.out.flush();
    }

    /** Prints the summary line; true when nothing failed. */
    boolean finish() {
        System.out.println(passed + " passed, " + failed + " failed");
        return failed == 0 && passed > 0;
    }

    static void expect(boolean ok, String what) {
        if (!ok) {
            throw new Failure(what);
        }
    }

    static void expectEqual(Object expected, Object actual, String what) {
        if (!Objects.equals(expected, actual)) {
            throw new Failure(what + ": expected " + quote(expected) + ", got " + quote(actual));
        }
    }

    static void expectEqual(int[] expected, int[] actual, String what) {
        if (!Arrays.equals(expected, actual)) {
            throw new Failure(what + ": expected " + Arrays.toString(expected) + ", got " + Arrays.toString(actual));
        }
    }

    /** Runs body, which must throw a T; returns it. */
    static <T extends Throwable> T expectThrows(Class<T> type, Body body, String what) {
        try {
            body.run();
        } catch (Throwable t) {
            if (type.isInstance(t)) {
                return type.cast(t);
            }
            throw new Failure(what + ": expected " + type.getSimpleName() + ", got " + t);
        }
        throw new Failure(what + ": expected " + type.getSimpleName() + ", nothing was thrown");
    }

    private static String quote(Object o) {
        return o instanceof String ? "\"" + o + "\"" : String.valueOf(o);
    }
}
