package dev.edgebit.harness;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;

/**
 * What `edgebit run` produced, as test-on-jvm.sh wrote it down: one directory per artifact
 * (artifacts/LABEL/{dir.txt, runtime.txt}) with one directory per prompt (cases/NAME/{prompt.txt,
 * max_new_tokens.txt, text.txt, prompt_ids.txt, generated_ids.txt}) and, for an artifact with a chat template,
 * chat/{system.txt, turn1.txt, turn2.txt, max_new_tokens.txt, runner-stdout.txt}. Plain UTF-8 files, so the Java side needs
 * no JSON parser and the text reaches it byte for byte.
 */
final class Expected {
    static final class Case {
        final String name;
        final String prompt;
        final int maxNewTokens;
        final String text;
        final int[] promptIds;
        final int[] generatedIds;

        Case(Path dir) throws IOException {
            name = dir.getFileName().toString();
            prompt = read(dir.resolve("prompt.txt"));
            maxNewTokens = Integer.parseInt(read(dir.resolve("max_new_tokens.txt")).trim());
            text = read(dir.resolve("text.txt"));
            promptIds = ids(read(dir.resolve("prompt_ids.txt")));
            generatedIds = ids(read(dir.resolve("generated_ids.txt")));
        }
    }

    /** A two-turn conversation and what `edgebit-runner --chat` printed for it (each reply, then a newline). */
    static final class Chat {
        final String system;
        final String turn1;
        final String turn2;
        final int maxNewTokens;
        final String runnerStdout;

        Chat(Path dir) throws IOException {
            system = read(dir.resolve("system.txt"));
            turn1 = read(dir.resolve("turn1.txt"));
            turn2 = read(dir.resolve("turn2.txt"));
            maxNewTokens = Integer.parseInt(read(dir.resolve("max_new_tokens.txt")).trim());
            runnerStdout = read(dir.resolve("runner-stdout.txt"));
        }
    }

    static final class Artifact {
        final String label;
        final String dir;
        final String runtime;
        final List<Case> cases = new ArrayList<>();
        /** null: the artifact has no chat template. */
        final Chat chat;

        Artifact(Path root) throws IOException {
            label = root.getFileName().toString();
            dir = read(root.resolve("dir.txt"));
            runtime = read(root.resolve("runtime.txt")).trim();
            chat = Files.isDirectory(root.resolve("chat")) ? new Chat(root.resolve("chat")) : null;
            for (Path c : sorted(root.resolve("cases"))) {
                cases.add(new Case(c));
            }
            if (cases.isEmpty()) {
                throw new IOException(root.resolve("cases") + ": no cases");
            }
        }
    }

    static String read(Path p) throws IOException {
        return new String(Files.readAllBytes(p), StandardCharsets.UTF_8);
    }

    static List<Artifact> artifacts(Path root) throws IOException {
        List<Artifact> out = new ArrayList<>();
        for (Path a : sorted(root.resolve("artifacts"))) {
            out.add(new Artifact(a));
        }
        if (out.isEmpty()) {
            throw new IOException(root.resolve("artifacts") + ": no artifacts");
        }
        return out;
    }

    private static List<Path> sorted(Path dir) throws IOException {
        try (Stream<Path> s = Files.list(dir)) {
            List<Path> out = new ArrayList<>();
            s.filter(Files::isDirectory).sorted().forEach(out::add);
            return out;
        }
    }

    private static int[] ids(String csv) {
        String t = csv.trim();
        if (t.isEmpty()) {
            return new int[0];
        }
        String[] parts = t.split(",");
        int[] out = new int[parts.length];
        for (int i = 0; i < parts.length; i++) {
            out[i] = Integer.parseInt(parts[i].trim());
        }
        return out;
    }

    private Expected() {}
}
