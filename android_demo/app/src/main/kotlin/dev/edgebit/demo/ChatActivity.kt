package dev.edgebit.demo

import android.app.Activity
import android.os.Build
import android.os.Bundle
import android.os.Handler
import android.os.Looper
import android.view.View
import android.view.WindowInsets
import android.widget.AdapterView
import android.widget.ArrayAdapter
import android.widget.Button
import android.widget.CheckBox
import android.widget.EditText
import android.widget.ScrollView
import android.widget.Spinner
import android.widget.TextView
import dev.edgebit.engine.EdgebitEngine
import dev.edgebit.engine.EdgebitException
import dev.edgebit.engine.GenerationOptions
import dev.edgebit.engine.GenerationStats
import dev.edgebit.engine.TokenCallback
import java.io.File
import java.util.concurrent.ExecutorService
import java.util.concurrent.Executors
import org.json.JSONObject

/**
 * The chat screen: pick an artifact from the app's external files dir, send a message, read the answer as it streams,
 * stop it, and see the engine's figures (time to first token, prefill and decode speed, peak memory).
 * Loading and generating run on one background thread; every failure becomes a message in the conversation.
 */
class ChatActivity : Activity() {
    private lateinit var picker: Spinner
    private lateinit var scroll: ScrollView
    private lateinit var transcript: TextView
    private lateinit var statsView: TextView
    private lateinit var greedy: CheckBox
    private lateinit var prompt: EditText
    private lateinit var send: Button
    private lateinit var stop: Button

    // The engine is used on this thread only, except cancel(), which Stop calls from the UI thread.
    private val worker: ExecutorService = Executors.newSingleThreadExecutor()
    private val ui = Handler(Looper.getMainLooper())
    @Volatile private var engine: EdgebitEngine? = null
    @Volatile private var chatMode = false
    private var artifacts: List<Artifact> = emptyList()
    private var loadedDir: File? = null

    override fun onCreate(savedInstanceState: Bundle?) {
        super.onCreate(savedInstanceState)
        setContentView(R.layout.activity_chat)
        picker = findViewById(R.id.artifact_picker)
        scroll = findViewById(R.id.transcript_scroll)
        transcript = findViewById(R.id.transcript)
        statsView = findViewById(R.id.stats)
        greedy = findViewById(R.id.greedy)
        prompt = findViewById(R.id.prompt)
        send = findViewById(R.id.send)
        stop = findViewById(R.id.stop)
        padForSystemBars(findViewById(R.id.root))

        send.setOnClickListener { onSend() }
        stop.setOnClickListener { engine?.cancel() }
        picker.onItemSelectedListener = object : AdapterView.OnItemSelectedListener {
            override fun onItemSelected(parent: AdapterView<*>?, view: View?, position: Int, id: Long) {
                load(artifacts[position])
            }

            override fun onNothingSelected(parent: AdapterView<*>?) {}
        }
    }

    override fun onResume() {
        super.onResume()
        // Artifacts may have been pushed while the app was in the background.
        val found = findArtifacts(getExternalFilesDir(null))
        if (found.map { it.dir } == artifacts.map { it.dir }) return
        artifacts = found
        picker.adapter = ArrayAdapter(this, android.R.layout.simple_spinner_dropdown_item, artifacts)
        if (artifacts.isEmpty()) say(getString(R.string.no_artifacts, getExternalFilesDir(null)?.path ?: "?"))
    }

    override fun onDestroy() {
        super.onDestroy()
        engine?.cancel()
        worker.execute {
            engine?.close()
            engine = null
        }
        worker.shutdown()
    }

    private fun load(artifact: Artifact) {
        if (artifact.dir == loadedDir) return
        loadedDir = artifact.dir
        setBusy(true)
        say(getString(R.string.loading, artifact.dir.name))
        // An artifact exported on a desktop carries the desktop's op library: use the one built for this phone's ABI.
        val opLibrary = if (artifact.target == "onnx") File(applicationInfo.nativeLibraryDir, OP_LIBRARY).path else null
        worker.execute {
            engine?.close()
            engine = null
            try {
                val e = EdgebitEngine.load(artifact.dir.path, threads(), opLibrary)
                engine = e
                val info = JSONObject(e.infoJson())
                chatMode = info.optBoolean("has_chat_template")
                if (chatMode) e.chatReset(null)
                val s = e.stats()
                val mode = getString(if (chatMode) R.string.mode_chat else R.string.mode_completion)
                val msg = getString(R.string.loaded, artifact.dir.name, info.optString("runtime"),
                                    info.optString("kernel_variant"), s.maxSeqLen, s.loadMs, mode)
                ui.post {
                    say(msg)
                    setBusy(false)
                }
            } catch (t: Throwable) {
                report(t)
            }
        }
    }

    private fun onSend() {
        val text = prompt.text.toString().trim()
        if (text.isEmpty()) return
        if (engine == null) {
            say(getString(R.string.not_loaded))
            return
        }
        prompt.text.clear()
        say(getString(R.string.you, text))
        transcript.append(getString(R.string.model))
        setBusy(true)
        val options = if (greedy.isChecked) GenerationOptions.greedy(MAX_NEW_TOKENS) else sampling()
        worker.execute {
            val e = engine ?: return@execute report(IllegalStateException(getString(R.string.not_loaded)))
            val onToken = TokenCallback { piece, _ ->
                ui.post { appendAndScroll(piece) }
                true
            }
            try {
                if (chatMode) e.chatSend(text, options, onToken) else e.generate(text, options, onToken)
                val line = statsLine(e.stats())
                ui.post {
                    appendAndScroll("\n")
                    statsView.text = line
                    setBusy(false)
                }
            } catch (ex: EdgebitException) {
                report(ex)
                // A full context ends the conversation: start a new one so the next message can be answered. Nothing
                // may escape this thread (an uncaught exception ends the app).
                if (ex.code() == EdgebitException.CONTEXT_FULL && chatMode) {
                    runCatching { e.chatReset(null) }.onFailure(::report)
                }
            } catch (t: Throwable) {
                report(t)
            }
        }
    }

    /**
     * BitNet's usual sample settings (temperature 0.8, repetition penalty 1.1): greedy decoding loops on small models,
     * but is what reproduces `edgebit run`'s text, so the screen offers both.
     */
    private fun sampling(): GenerationOptions = GenerationOptions.defaults().apply {
        maxNewTokens = MAX_NEW_TOKENS
        temperature = 0.8f
        repetitionPenalty = 1.1f
        seed = System.nanoTime()
    }

    private fun statsLine(s: GenerationStats): String =
        getString(R.string.stats_line, s.timeToFirstTokenMs, s.prefillTokensPerSecond, s.decodeTokensPerSecond,
                  s.peakRssBytes / (1024 * 1024), s.generatedTokens, s.stopReason.name.lowercase())

    private fun report(t: Throwable) {
        val msg = getString(R.string.error, t.message ?: t.toString())
        ui.post {
            say(msg)
            setBusy(false)
        }
    }

    private fun say(line: String) {
        if (transcript.text.isNotEmpty() && !transcript.text.endsWith("\n")) transcript.append("\n")
        appendAndScroll(line + "\n")
    }

    private fun appendAndScroll(text: String) {
        transcript.append(text)
        scroll.post { scroll.fullScroll(View.FOCUS_DOWN) }
    }

    private fun setBusy(busy: Boolean) {
        send.isEnabled = !busy
        stop.isEnabled = busy
        picker.isEnabled = !busy
    }

    /** Android 15+ draws apps edge to edge: keep the screen clear of the system bars and the keyboard. */
    private fun padForSystemBars(root: View) {
        if (Build.VERSION.SDK_INT < 35) return
        val pad = root.paddingLeft  // the layout's own padding, the same on every side
        root.setOnApplyWindowInsetsListener { v, insets ->
            val bars = insets.getInsets(WindowInsets.Type.systemBars() or WindowInsets.Type.ime())
            v.setPadding(pad + bars.left, pad + bars.top, pad + bars.right, pad + bars.bottom)
            insets
        }
    }

    private companion object {
        const val OP_LIBRARY = "libedgebit_ort.so"
        const val MAX_NEW_TOKENS = 256

        /** Big cores first: past 4 threads a phone's little cores slow a memory-bound decode down. */
        fun threads(): Int = Runtime.getRuntime().availableProcessors().coerceIn(1, 4)
    }
}
