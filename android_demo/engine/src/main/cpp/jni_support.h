// What the JNI bridge needs from the JVM beyond the engine's C API: the Java classes it builds (looked up once,
// in JNI_OnLoad, because FindClass from a native thread or a later call may see the wrong class loader), and
// conversions between Java strings and the engine's standard UTF-8.
#ifndef EDGEBIT_JNI_SUPPORT_H
#define EDGEBIT_JNI_SUPPORT_H

#include <jni.h>

#include <cstddef>
#include <string>

namespace edgebit_jni {

struct JavaRefs {
    jclass string_class;
    jmethodID string_from_bytes;  // String(byte[], Charset)
    jobject utf8_charset;         // StandardCharsets.UTF_8
    jclass exception_class;       // dev.edgebit.engine.EdgebitException
    jmethodID exception_ctor;     // (int code, String message)
    jclass stats_class;           // dev.edgebit.engine.GenerationStats
    jmethodID stats_ctor;         // edgebit_stats field order
    jmethodID on_token;           // TokenCallback.onToken(String, int) -> boolean
    jclass options_class;         // dev.edgebit.engine.GenerationOptions
    jmethodID options_ctor;       // edgebit_sampling field order
    jfieldID opt_max_new_tokens, opt_temperature, opt_top_k, opt_top_p, opt_repetition_penalty, opt_seed,
        opt_ignore_eos;
};

// Looks the classes up (JNI_OnLoad); false with a Java exception pending when a class or member is missing.
bool init_refs(JNIEnv* env);
const JavaRefs& refs();

// A Java String from standard UTF-8 bytes (NewStringUTF expects modified UTF-8, which differs for 4-byte
// characters such as emoji and for NUL). nullptr with an exception pending on failure.
jstring java_string(JNIEnv* env, const char* utf8, size_t len);
inline jstring java_string(JNIEnv* env, const std::string& utf8) { return java_string(env, utf8.data(), utf8.size()); }

// The bytes of a Java byte[] (the Java side encodes strings as standard UTF-8 and has rejected NUL).
std::string bytes_of(JNIEnv* env, jbyteArray bytes);

// Throws dev.edgebit.engine.EdgebitException(code, message) into the JVM (the native method must then return).
void throw_edgebit(JNIEnv* env, int code, const std::string& message);

}  // namespace edgebit_jni

#endif  // EDGEBIT_JNI_SUPPORT_H
