#include "jni_support.h"

namespace edgebit_jni {
namespace {

JavaRefs g_refs{};

jclass global_class(JNIEnv* env, const char* name) {
    jclass local = env->FindClass(name);
    if (local == nullptr) return nullptr;
    auto global = static_cast<jclass>(env->NewGlobalRef(local));
    env->DeleteLocalRef(local);
    return global;
}

// A class (global reference) and one of its methods; false with NoClassDefFoundError/NoSuchMethodError pending.
bool class_and_method(JNIEnv* env, const char* cls, const char* method, const char* sig, jclass& c, jmethodID& m) {
    c = global_class(env, cls);
    if (c == nullptr) return false;
    m = env->GetMethodID(c, method, sig);
    return m != nullptr;
}

}  // namespace

bool init_refs(JNIEnv* env) {
    JavaRefs r{};
    if (!class_and_method(env, "java/lang/String", "<init>", "([BLjava/nio/charset/Charset;)V", r.string_class,
                          r.string_from_bytes))
        return false;

    jclass charsets = env->FindClass("java/nio/charset/StandardCharsets");
    if (charsets == nullptr) return false;
    jfieldID utf8_field = env->GetStaticFieldID(charsets, "UTF_8", "Ljava/nio/charset/Charset;");
    if (utf8_field == nullptr) return false;
    jobject utf8 = env->GetStaticObjectField(charsets, utf8_field);
    r.utf8_charset = env->NewGlobalRef(utf8);
    env->DeleteLocalRef(utf8);
    env->DeleteLocalRef(charsets);

    jclass callback = nullptr;
    if (!class_and_method(env, "dev/edgebit/engine/EdgebitException", "<init>", "(ILjava/lang/String;)V",
                          r.exception_class, r.exception_ctor) ||
        !class_and_method(env, "dev/edgebit/engine/GenerationStats", "<init>", "(DDDDJJJJJJI)V", r.stats_class,
                          r.stats_ctor) ||
        !class_and_method(env, "dev/edgebit/engine/TokenCallback", "onToken", "(Ljava/lang/String;I)Z", callback,
                          r.on_token) ||
        !class_and_method(env, "dev/edgebit/engine/GenerationOptions", "<init>", "(IFIFFJZ)V", r.options_class,
                          r.options_ctor))
        return false;
    // The method id stays valid while the interface is loaded, and EdgebitEngine's class loader keeps it loaded.
    env->DeleteGlobalRef(callback);
    const struct {
        jfieldID* id;
        const char* name;
        const char* sig;
    } fields[] = {{&r.opt_max_new_tokens, "maxNewTokens", "I"}, {&r.opt_temperature, "temperature", "F"},
                  {&r.opt_top_k, "topK", "I"}, {&r.opt_top_p, "topP", "F"},
                  {&r.opt_repetition_penalty, "repetitionPenalty", "F"}, {&r.opt_seed, "seed", "J"},
                  {&r.opt_ignore_eos, "ignoreEos", "Z"}};
    for (const auto& f : fields) {
        *f.id = env->GetFieldID(r.options_class, f.name, f.sig);
        if (*f.id == nullptr) return false;
    }
    g_refs = r;
    return true;
}

const JavaRefs& refs() { return g_refs; }

jstring java_string(JNIEnv* env, const char* utf8, size_t len) {
    jbyteArray bytes = env->NewByteArray(static_cast<jsize>(len));
    if (bytes == nullptr) return nullptr;
    env->SetByteArrayRegion(bytes, 0, static_cast<jsize>(len), reinterpret_cast<const jbyte*>(utf8));
    auto s = static_cast<jstring>(env->NewObject(g_refs.string_class, g_refs.string_from_bytes, bytes,
                                                 g_refs.utf8_charset));
    env->DeleteLocalRef(bytes);
    return s;
}

std::string bytes_of(JNIEnv* env, jbyteArray bytes) {
    std::string out(static_cast<size_t>(env->GetArrayLength(bytes)), '\0');
    env->GetByteArrayRegion(bytes, 0, static_cast<jsize>(out.size()), reinterpret_cast<jbyte*>(&out[0]));
    return out;
}

void throw_edgebit(JNIEnv* env, int code, const std::string& message) {
    jstring text = java_string(env, message);
    if (text == nullptr) return;  // OutOfMemoryError pending: that one propagates instead
    auto ex = static_cast<jthrowable>(env->NewObject(g_refs.exception_class, g_refs.exception_ctor,
                                                     static_cast<jint>(code), text));
    env->DeleteLocalRef(text);
    if (ex == nullptr) return;
    env->Throw(ex);
    env->DeleteLocalRef(ex);
}

}  // namespace edgebit_jni
