package dev.edgebit.demo

import java.io.File
import org.json.JSONObject

/** An artifact directory written by `edgebit export` and pushed to the phone; the picker shows toString(). */
class Artifact(val dir: File, val target: String) {
    override fun toString(): String = "${dir.name} ($target)"
}

/**
 * The artifact directories (those holding a manifest.json) directly under root, by name. A manifest that cannot be
 * read still lists its directory, as target "?": loading it then shows the engine's own message about it.
 */
fun findArtifacts(root: File?): List<Artifact> {
    val dirs = root?.listFiles { f -> File(f, "manifest.json").isFile } ?: return emptyList()
    return dirs.sortedBy { it.name }.map { Artifact(it, manifestTarget(File(it, "manifest.json"))) }
}

private fun manifestTarget(manifest: File): String =
    try {
        JSONObject(manifest.readText()).optString("target", "?")
    } catch (e: Exception) {
        "?"
    }
