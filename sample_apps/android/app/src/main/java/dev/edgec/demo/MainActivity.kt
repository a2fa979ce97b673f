package dev.edgec.demo

import android.graphics.Bitmap
import android.graphics.BitmapFactory
import android.os.Bundle
import android.os.SystemClock
import android.widget.Button
import android.widget.ImageView
import android.widget.LinearLayout
import android.widget.TextView
import androidx.activity.result.PickVisualMediaRequest
import androidx.activity.result.contract.ActivityResultContracts
import androidx.appcompat.app.AppCompatActivity
import org.tensorflow.lite.Interpreter
import java.io.FileInputStream
import java.nio.ByteBuffer
import java.nio.ByteOrder
import java.nio.MappedByteBuffer
import java.nio.channels.FileChannel
import kotlin.math.exp
import kotlin.math.max
import kotlin.math.min
import kotlin.math.roundToInt

/** Picks a photo and classifies it with the edgec-built squeezenet.tflite from the app's assets. */
class MainActivity : AppCompatActivity() {
    private val lazyInterpreter = lazy { Interpreter(loadModel("squeezenet.tflite"), Interpreter.Options().setNumThreads(4)) }
    private val interpreter by lazyInterpreter
    private lateinit var image: ImageView
    private lateinit var result: TextView

    private val pick = registerForActivityResult(ActivityResultContracts.PickVisualMedia()) { uri ->
        if (uri == null) return@registerForActivityResult
        val bitmap = contentResolver.openInputStream(uri).use { BitmapFactory.decodeStream(it) } ?: return@registerForActivityResult
        image.setImageBitmap(bitmap)
        result.text = classify(bitmap)
    }

    override fun onCreate(savedInstanceState: Bundle?) {
        super.onCreate(savedInstanceState)
        image = ImageView(this).apply { adjustViewBounds = true }
        result = TextView(this).apply { text = "Pick a photo"; textSize = 16f }
        val button = Button(this).apply {
            text = "Choose image"
            setOnClickListener { pick.launch(PickVisualMediaRequest(ActivityResultContracts.PickVisualMedia.ImageOnly)) }
        }
        setContentView(LinearLayout(this).apply {
            orientation = LinearLayout.VERTICAL
            setPadding(32, 32, 32, 32)
            addView(button); addView(result); addView(image)
        })
    }

    /** Memory-maps the model (build.gradle.kts keeps .tflite uncompressed so this works). */
    private fun loadModel(name: String): MappedByteBuffer = assets.openFd(name).use { fd ->
        FileInputStream(fd.fileDescriptor).channel.use {
            it.map(FileChannel.MapMode.READ_ONLY, fd.startOffset, fd.declaredLength)
        }
    }

    private fun classify(bitmap: Bitmap): String {
        // edgec keeps the ONNX layout at the model's edges: 1x3xHxW (NCHW); handle NHWC too
        val shape = interpreter.getInputTensor(0).shape()
        val nchw = shape[1] == 3
        val h = if (nchw) shape[2] else shape[1]
        val w = if (nchw) shape[3] else shape[2]
        val input = preprocess(bitmap, h, w, nchw)
        val classes = interpreter.getOutputTensor(0).shape().last()
        val output = Array(1) { FloatArray(classes) }
        val t0 = SystemClock.elapsedRealtimeNanos()
        interpreter.run(input, output)
        val ms = (SystemClock.elapsedRealtimeNanos() - t0) / 1e6
        val probs = probabilities(output[0])
        val top = probs.indices.sortedByDescending { probs[it] }.take(5)
        return "%.1f ms\n".format(ms) + top.joinToString("\n") { "class $it: %.3f".format(probs[it]) }
    }

    /** Shorter side to 256/224 of the input, centre crop, RGB / 255, ImageNet mean/std (as in classify.py). */
    private fun preprocess(src: Bitmap, h: Int, w: Int, nchw: Boolean): ByteBuffer {
        val scale = max(h, w) * 256.0 / 224.0 / min(src.width, src.height)
        val sw = max(w, (src.width * scale).roundToInt())
        val sh = max(h, (src.height * scale).roundToInt())
        val scaled = Bitmap.createScaledBitmap(src, sw, sh, true)
        val crop = Bitmap.createBitmap(scaled, (sw - w) / 2, (sh - h) / 2, w, h)
        val pixels = IntArray(w * h).also { crop.getPixels(it, 0, w, 0, 0, w, h) }
        val mean = floatArrayOf(0.485f, 0.456f, 0.406f)
        val std = floatArrayOf(0.229f, 0.224f, 0.225f)
        val buf = ByteBuffer.allocateDirect(4 * 3 * h * w).order(ByteOrder.nativeOrder())
        val out = buf.asFloatBuffer()
        for (i in 0 until h * w) {
            val p = pixels[i]
            val rgb = floatArrayOf(((p shr 16) and 0xFF) / 255f, ((p shr 8) and 0xFF) / 255f, (p and 0xFF) / 255f)
            for (c in 0 until 3) {
                val v = (rgb[c] - mean[c]) / std[c]
                if (nchw) out.put(c * h * w + i, v) else out.put(i * 3 + c, v)
            }
        }
        return buf
    }

    /** Some zoo models end in Softmax, some return logits. */
    private fun probabilities(scores: FloatArray): FloatArray {
        if (scores.all { it >= 0f } && kotlin.math.abs(scores.sum() - 1f) < 1e-3f) return scores
        val m = scores.max()
        val e = scores.map { exp(it - m) }
        val s = e.sum()
        return e.map { it / s }.toFloatArray()
    }

    override fun onDestroy() {
        if (lazyInterpreter.isInitialized()) interpreter.close()
        super.onDestroy()
    }
}
