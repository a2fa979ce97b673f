plugins {
    id("com.android.application")
    id("org.jetbrains.kotlin.android")
}

android {
    namespace = "dev.edgec.demo"
    compileSdk = 35
    defaultConfig {
        applicationId = "dev.edgec.demo"
        minSdk = 26
        targetSdk = 35
        versionCode = 1
        versionName = "1.0"
    }
    // the .tflite is memory-mapped from the APK: it must stay uncompressed
    androidResources { noCompress += "tflite" }
    compileOptions {
        sourceCompatibility = JavaVersion.VERSION_17
        targetCompatibility = JavaVersion.VERSION_17
    }
    kotlinOptions { jvmTarget = "17" }
}

dependencies {
    // LiteRT (the TFLite runtime) with the classic Interpreter API, org.tensorflow.lite.*
    implementation("com.google.ai.edge.litert:litert:1.4.1")
    implementation("androidx.activity:activity-ktx:1.9.3")
    implementation("androidx.appcompat:appcompat:1.7.0")
}

// Written by `edgec integrate gradle`. Paste at the end of app/build.gradle.kts (it uses the Android
// Gradle Plugin's androidComponents API, which a separately applied script cannot see).
// Compiles src/main/ml/squeezenet.onnx to squeezenet.tflite with edgec before preBuild and adds it to the app's assets;
// Gradle re-runs it only when the model, the profile or the edgec command changes.

abstract class EdgecBuild : DefaultTask() {
    @get:InputFile @get:PathSensitive(PathSensitivity.RELATIVE) abstract val model: RegularFileProperty
    @get:Input abstract val profile: Property<String>
    @get:InputFiles @get:Optional @get:PathSensitive(PathSensitivity.RELATIVE) abstract val profileFile: ConfigurableFileCollection
    @get:Input abstract val edgec: Property<String>
    @get:OutputDirectory abstract val assetsDir: DirectoryProperty
    // fully qualified: a block pasted at the end of a build script cannot add imports
    @get:javax.inject.Inject abstract val execOps: org.gradle.process.ExecOperations
    @get:javax.inject.Inject abstract val fsOps: org.gradle.api.file.FileSystemOperations

    @TaskAction
    fun compile() {
        val work = temporaryDir
        execOps.exec {
            commandLine(edgec.get(), "build", model.get().asFile.path, "--target", "android",
                "--profile", profile.get(), "--out", work.path)
        }
        // only the model goes into the APK; manifest.json and report.md stay in the task's temp folder
        fsOps.sync {
            from(work) { include("*.tflite") }
            into(assetsDir)
        }
        logger.lifecycle("edgec: report at ${work}/report.md")
    }
}

val edgecBuild = tasks.register<EdgecBuild>("edgecBuild") {
    description = "Compile src/main/ml/squeezenet.onnx to TFLite with edgec (validated against ONNX Runtime)."
    group = "build"
    model.set(layout.projectDirectory.file("src/main/ml/squeezenet.onnx"))
    profile.set("pixel-8")
    edgec.set(providers.gradleProperty("edgec").orElse("edgec"))  // -Pedgec=/path/to/venv/bin/edgec
    assetsDir.set(layout.buildDirectory.dir("generated/edgec/assets"))
}

androidComponents {
    onVariants { variant ->
        // registers the folder as an assets source and makes every task that reads assets depend on edgecBuild
        variant.sources.assets?.addGeneratedSourceDirectory(edgecBuild, EdgecBuild::assetsDir)
    }
}
tasks.named("preBuild") { dependsOn(edgecBuild) }
