// The chat app: one Activity over EdgebitEngine (the :engine module), Android framework widgets only.
import org.jetbrains.kotlin.gradle.dsl.JvmTarget

plugins {
    alias(libs.plugins.android.application)
    alias(libs.plugins.kotlin.android)
}

android {
    namespace = "dev.edgebit.demo"
    compileSdk = libs.versions.compileSdk.get().toInt()
    // The NDK that strips the packaged native libraries: the one :engine builds them with.
    ndkVersion = libs.versions.ndk.get()

    defaultConfig {
        applicationId = "dev.edgebit.demo"
        minSdk = libs.versions.minSdk.get().toInt()
        targetSdk = libs.versions.targetSdk.get().toInt()
        versionCode = 1
        versionName = "0.1.0"
        ndk {
            abiFilters += listOf("arm64-v8a", "x86_64")
        }
    }

    buildTypes {
        release {
            isMinifyEnabled = false
        }
    }

    compileOptions {
        sourceCompatibility = JavaVersion.VERSION_17
        targetCompatibility = JavaVersion.VERSION_17
    }

    packaging {
        jniLibs {
            // Extract the native libraries to nativeLibraryDir at install: ONNX Runtime loads the op library
            // libedgebit_ort.so by file path (dlopen), which cannot reach into an uncompressed APK.
            useLegacyPackaging = true
        }
    }
}

kotlin {
    compilerOptions {
        jvmTarget.set(JvmTarget.JVM_17)
    }
}

dependencies {
    implementation(project(":engine"))
}
