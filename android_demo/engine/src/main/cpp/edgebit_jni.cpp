// The JNI bridge of dev.edgebit.engine.EdgebitEngine over the engine's C API (runtime_ops/engine/edgebit_engine.h).
// Only argument conversion lives here: loading, tokenizing, sampling and timing are the engine's, the same code
// the edgebit-runner CLI runs. The natives are registered in JNI_OnLoad, so the only exported symbol is JNI_OnLoad
// and a Java/C++ signature mismatch fails at System.loadLibrary, not at the first call.
#include <jni.h>

#include <cstdint>
#include <string>
#include <vector>

#include "edgebit_engine.h"
#include "jni_support.h"

namespace edgebit_jni {
namespace {

edgebit_engine* engine_of(jlong handle) { return reinterpret_cast<edgebit_engine*>(static_cast<intptr_t>(handle)); }

// One generation's stream: the bytes so far (the call's return value) and the Java callback, if any.
struct Stream {
    JNIEnv* env;
    jobject callback;
    std::string text;
    bool java_threw = false;
};

// Runs on the thread that called generate/chat_send (the engine calls back synchronously). A throwing Java
// callback stops the generation; its exception stays pending and reaches the caller.
int on_piece(const char* text, size_t text_len, int32_t token_id, void* user) {
    auto* s = static_cast<Stream*>(user);
    s->text.append(text, text_len);
    if (s->callback == nullptr) return 0;
    JNIEnv* env = s->env;
    jstring piece = java_string(env, text, text_len);
    if (piece == nullptr) {
        s->java_threw = true;
        return 1;
    }
    jboolean go_on = env->CallBooleanMethod(s->callback, refs().on_token, piece, static_cast<jint>(token_id));
    // Thousands of tokens in one native call: free each piece, or the local reference table fills up.
    env->DeleteLocalRef(piece);
    if (env->ExceptionCheck()) {
        s->java_threw = true;
        return 1;
    }
    return go_on ? 0 : 1;
}

std::string last_error(edgebit_engine* e, int status) {
    const char* msg = edgebit_engine_last_error(e);
    if (msg != nullptr && *msg != '\0') return msg;
    return "edgebit engine: status " + std::to_string(status) + " without a message";
}

edgebit_sampling sampling_of(JNIEnv* env, jobject o) {
    const JavaRefs& r = refs();
    edgebit_sampling s;
    edgebit_sampling_init(&s);
    s.max_new_tokens = env->GetIntField(o, r.opt_max_new_tokens);
    s.temperature = env->GetFloatField(o, r.opt_temperature);
    s.top_k = env->GetIntField(o, r.opt_top_k);
    s.top_p = env->GetFloatField(o, r.opt_top_p);
    s.repetition_penalty = env->GetFloatField(o, r.opt_repetition_penalty);
    s.seed = static_cast<uint64_t>(env->GetLongField(o, r.opt_seed));
    s.ignore_eos = env->GetBooleanField(o, r.opt_ignore_eos) ? 1 : 0;
    return s;
}

jobject native_sampling_defaults(JNIEnv* env, jclass) {
    edgebit_sampling s;
    edgebit_sampling_init(&s);
    return env->NewObject(refs().options_class, refs().options_ctor, static_cast<jint>(s.max_new_tokens),
                          static_cast<jfloat>(s.temperature), static_cast<jint>(s.top_k), static_cast<jfloat>(s.top_p),
                          static_cast<jfloat>(s.repetition_penalty), static_cast<jlong>(s.seed),
                          static_cast<jboolean>(s.ignore_eos != 0));
}

// generate and chat_send differ only in the C function they call.
template <typename Call>
jstring stream_call(JNIEnv* env, jlong handle, jobject callback, Call call) {
    edgebit_engine* e = engine_of(handle);
    Stream stream{env, callback, {}};
    int status = call(e, &stream);
    if (stream.java_threw) return nullptr;
    if (status != EDGEBIT_OK) {
        throw_edgebit(env, status, last_error(e, status));
        return nullptr;
    }
    return java_string(env, stream.text);
}

jlong native_open(JNIEnv* env, jclass, jbyteArray dir, jint threads, jbyteArray op_library, jlong max_memory_mb) {
    std::string dir_s = bytes_of(env, dir);
    std::string lib_s = op_library != nullptr ? bytes_of(env, op_library) : std::string();
    edgebit_engine_config cfg;
    edgebit_engine_config_init(&cfg);
    cfg.threads = threads;
    cfg.op_library = op_library != nullptr ? lib_s.c_str() : nullptr;
    cfg.max_memory_mb = max_memory_mb;
    char error[2048] = {0};
    edgebit_engine* e = edgebit_engine_open(dir_s.c_str(), &cfg, error, sizeof error);
    if (e == nullptr) {
        throw_edgebit(env, -100 /* EdgebitException.LOAD_FAILED */,
                      error[0] != '\0' ? std::string(error) : "edgebit engine: could not open " + dir_s);
        return 0;
    }
    return static_cast<jlong>(reinterpret_cast<intptr_t>(e));
}

void native_close(JNIEnv*, jclass, jlong handle) { edgebit_engine_close(engine_of(handle)); }

jstring native_info_json(JNIEnv* env, jclass, jlong handle) {
    const char* info = edgebit_engine_info_json(engine_of(handle));
    return java_string(env, info != nullptr ? std::string(info) : std::string("{}"));
}

jstring native_generate(JNIEnv* env, jclass, jlong handle, jbyteArray prompt, jobject options, jobject callback) {
    std::string prompt_s = bytes_of(env, prompt);
    edgebit_sampling s = sampling_of(env, options);
    return stream_call(env, handle, callback, [&](edgebit_engine* e, Stream* stream) {
        return edgebit_engine_generate(e, prompt_s.c_str(), &s, on_piece, stream);
    });
}

void native_chat_reset(JNIEnv* env, jclass, jlong handle, jbyteArray system_prompt) {
    std::string system_s = system_prompt != nullptr ? bytes_of(env, system_prompt) : std::string();
    edgebit_engine* e = engine_of(handle);
    int status = edgebit_engine_chat_reset(e, system_prompt != nullptr ? system_s.c_str() : nullptr);
    if (status != EDGEBIT_OK) throw_edgebit(env, status, last_error(e, status));
}

jstring native_chat_send(JNIEnv* env, jclass, jlong handle, jbyteArray message, jobject options, jobject callback) {
    std::string message_s = bytes_of(env, message);
    edgebit_sampling s = sampling_of(env, options);
    return stream_call(env, handle, callback, [&](edgebit_engine* e, Stream* stream) {
        return edgebit_engine_chat_send(e, message_s.c_str(), &s, on_piece, stream);
    });
}

void native_cancel(JNIEnv*, jclass, jlong handle) { edgebit_engine_cancel(engine_of(handle)); }

jobject native_stats(JNIEnv* env, jclass, jlong handle) {
    edgebit_engine* e = engine_of(handle);
    edgebit_stats st;
    int status = edgebit_engine_stats(e, &st);
    if (status != EDGEBIT_OK) {
        throw_edgebit(env, status, last_error(e, status));
        return nullptr;
    }
    return env->NewObject(refs().stats_class, refs().stats_ctor, st.load_ms, st.ttft_ms, st.prefill_tokens_per_s,
                          st.decode_tokens_per_s, static_cast<jlong>(st.prompt_tokens),
                          static_cast<jlong>(st.generated_tokens), static_cast<jlong>(st.context_tokens),
                          static_cast<jlong>(st.max_seq_len), static_cast<jlong>(st.rss_after_load_bytes),
                          static_cast<jlong>(st.peak_rss_bytes), static_cast<jint>(st.stop_reason));
}

// The engine's id getters return the full count and copy at most cap: ask once for the count, then copy.
using IdGetter = size_t (*)(const edgebit_engine*, int32_t*, size_t);
jintArray ids(JNIEnv* env, jlong handle, IdGetter get) {
    const edgebit_engine* e = engine_of(handle);
    std::vector<int32_t> out(get(e, nullptr, 0));
    get(e, out.data(), out.size());
    jintArray arr = env->NewIntArray(static_cast<jsize>(out.size()));
    if (arr == nullptr) return nullptr;
    env->SetIntArrayRegion(arr, 0, static_cast<jsize>(out.size()), reinterpret_cast<const jint*>(out.data()));
    return arr;
}

jintArray native_last_prompt_ids(JNIEnv* env, jclass, jlong handle) {
    return ids(env, handle, edgebit_engine_last_prompt_ids);
}

jintArray native_last_generated_ids(JNIEnv* env, jclass, jlong handle) {
    return ids(env, handle, edgebit_engine_last_generated_ids);
}

#define STREAM_SIG "Ldev/edgebit/engine/GenerationOptions;Ldev/edgebit/engine/TokenCallback;"
const JNINativeMethod kMethods[] = {
    {const_cast<char*>("nativeSamplingDefaults"), const_cast<char*>("()Ldev/edgebit/engine/GenerationOptions;"),
     reinterpret_cast<void*>(native_sampling_defaults)},
    {const_cast<char*>("nativeOpen"), const_cast<char*>("([BI[BJ)J"), reinterpret_cast<void*>(native_open)},
    {const_cast<char*>("nativeClose"), const_cast<char*>("(J)V"), reinterpret_cast<void*>(native_close)},
    {const_cast<char*>("nativeInfoJson"), const_cast<char*>("(J)Ljava/lang/String;"),
     reinterpret_cast<void*>(native_info_json)},
    {const_cast<char*>("nativeGenerate"), const_cast<char*>("(J[B" STREAM_SIG ")Ljava/lang/String;"),
     reinterpret_cast<void*>(native_generate)},
    {const_cast<char*>("nativeChatReset"), const_cast<char*>("(J[B)V"), reinterpret_cast<void*>(native_chat_reset)},
    {const_cast<char*>("nativeChatSend"), const_cast<char*>("(J[B" STREAM_SIG ")Ljava/lang/String;"),
     reinterpret_cast<void*>(native_chat_send)},
    {const_cast<char*>("nativeCancel"), const_cast<char*>("(J)V"), reinterpret_cast<void*>(native_cancel)},
    {const_cast<char*>("nativeStats"), const_cast<char*>("(J)Ldev/edgebit/engine/GenerationStats;"),
     reinterpret_cast<void*>(native_stats)},
    {const_cast<char*>("nativeLastPromptIds"), const_cast<char*>("(J)[I"),
     reinterpret_cast<void*>(native_last_prompt_ids)},
    {const_cast<char*>("nativeLastGeneratedIds"), const_cast<char*>("(J)[I"),
     reinterpret_cast<void*>(native_last_generated_ids)},
};
#undef STREAM_SIG

}  // namespace
}  // namespace edgebit_jni

extern "C" JNIEXPORT jint JNI_OnLoad(JavaVM* vm, void*) {
    JNIEnv* env = nullptr;
    if (vm->GetEnv(reinterpret_cast<void**>(&env), JNI_VERSION_1_6) != JNI_OK) return JNI_ERR;
    if (edgebit_engine_abi_version() != EDGEBIT_ENGINE_ABI_VERSION) {
        jclass error = env->FindClass("java/lang/UnsatisfiedLinkError");
        std::string msg = "libedgebit_engine has C API version " + std::to_string(edgebit_engine_abi_version()) +
                          ", the JNI bridge was built for " + std::to_string(EDGEBIT_ENGINE_ABI_VERSION);
        env->ThrowNew(error, msg.c_str());
        return JNI_ERR;
    }
    if (!edgebit_jni::init_refs(env)) return JNI_ERR;
    jclass engine = env->FindClass("dev/edgebit/engine/EdgebitEngine");
    if (engine == nullptr) return JNI_ERR;
    const jint n = static_cast<jint>(sizeof edgebit_jni::kMethods / sizeof edgebit_jni::kMethods[0]);
    if (env->RegisterNatives(engine, edgebit_jni::kMethods, n) != JNI_OK) return JNI_ERR;
    env->DeleteLocalRef(engine);
    return JNI_VERSION_1_6;
}
