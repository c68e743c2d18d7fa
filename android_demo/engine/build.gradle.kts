// The engine library module: EdgebitEngine (Java, no Android dependency) and libedgebit_jni, the JNI bridge, built by
// src/main/cpp/CMakeLists.txt through the NDK together with the engine itself (../runtime_ops of this repository).
plugins {
    alias(libs.plugins.android.library)
}

// The onnxruntime-android AAR as a file: its headers/ and jni/<ABI>/libonnxruntime.so are what the engine compiles
// and links against. CMake unpacks them (so an IDE sync, which configures CMake outside any Gradle task, works too);
// the `implementation` dependency below is what puts the same libonnxruntime.so into the APK.
val onnxruntimeAar: Configuration by configurations.creating {
    isCanBeConsumed = false
    isCanBeResolved = true
    isTransitive = false
}

dependencies {
    onnxruntimeAar("com.microsoft.onnxruntime:onnxruntime-android:${libs.versions.onnxruntime.get()}@aar")
    implementation(libs.onnxruntime.android)
}

android {
    namespace = "dev.edgebit.engine"
    compileSdk = libs.versions.compileSdk.get().toInt()
    ndkVersion = libs.versions.ndk.get()

    defaultConfig {
        minSdk = libs.versions.minSdk.get().toInt()
        consumerProguardFiles("consumer-rules.pro")
        ndk {
            // Phones, and the x86_64 emulator.
            abiFilters += listOf("arm64-v8a", "x86_64")
        }
        externalNativeBuild {
            cmake {
                // What the APK holds (src/main/cpp/CMakeLists.txt): not the command-line runner it also defines.
                targets += listOf("edgebit_jni", "edgebit_engine", "edgebit_ort")
                arguments += listOf(
                    "-DEDGEBIT_ORT_AAR=${onnxruntimeAar.singleFile.absolutePath}",
                    // Three C++ libraries (engine, JNI bridge, op library) share one C++ runtime.
                    "-DANDROID_STL=c++_shared",
                    // 16 KB page alignment, which Android 15+ devices with 16 KB pages require (default from NDK r28).
                    "-DANDROID_SUPPORT_FLEXIBLE_PAGE_SIZES=ON",
                )
            }
        }
    }

    externalNativeBuild {
        cmake {
            path = file("src/main/cpp/CMakeLists.txt")
            version = libs.versions.cmake.get()
        }
    }

    compileOptions {
        sourceCompatibility = JavaVersion.VERSION_17
        targetCompatibility = JavaVersion.VERSION_17
    }

    packaging {
        jniLibs {
            // ONNX Runtime's own Java binding is not used: the engine calls ONNX Runtime from C++.
            excludes += "**/libonnxruntime4j_jni.so"
        }
    }
}
