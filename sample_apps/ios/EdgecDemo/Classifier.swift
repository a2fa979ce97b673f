import CoreML
import UIKit

/// Runs the edgec-built model. edgec keeps the ONNX input as a float tensor (1x3xHxW, NCHW), so the image is
/// resized, centre-cropped and ImageNet-normalised here, exactly like sample_apps/edge-python/classify.py.
struct Prediction: Identifiable {
    let index: Int
    let probability: Float
    var id: Int { index }
}

final class Classifier {
    private let model: MLModel
    private let inputName: String
    private let height: Int
    private let width: Int

    /// `name` is the model file stem: Xcode compiles Models/<name>.mlpackage into <name>.mlmodelc in the app bundle.
    init(name: String = "squeezenet") throws {
        guard let url = Bundle.main.url(forResource: name, withExtension: "mlmodelc") else {
            throw NSError(domain: "EdgecDemo", code: 1, userInfo: [NSLocalizedDescriptionKey:
                "\(name).mlmodelc is not in the app bundle: build once, then add EdgecDemo/Models/\(name).mlpackage to the target"])
        }
        let config = MLModelConfiguration()
        config.computeUnits = .all
        model = try MLModel(contentsOf: url, configuration: config)
        guard let (inputName, desc) = model.modelDescription.inputDescriptionsByName.first,
              let shape = desc.multiArrayConstraint?.shape.map({ $0.intValue }), shape.count == 4, shape[1] == 3 else {
            throw NSError(domain: "EdgecDemo", code: 2, userInfo: [NSLocalizedDescriptionKey:
                "expected one 1x3xHxW float input"])
        }
        self.inputName = inputName
        self.height = shape[2]
        self.width = shape[3]
    }

    /// Top-k classes, best first.
    func classify(_ image: UIImage, top: Int = 5) throws -> [Prediction] {
        let input = try tensor(from: image)
        let out = try model.prediction(from: MLDictionaryFeatureProvider(dictionary: [inputName: input]))
        guard let name = model.modelDescription.outputDescriptionsByName.keys.sorted().first,
              let scores = out.featureValue(for: name)?.multiArrayValue else { return [] }
        var values = (0..<scores.count).map { scores[$0].floatValue }
        // zoo models differ: some end in Softmax, some return logits
        let sum = values.reduce(0, +)
        if values.contains(where: { $0 < 0 }) || abs(sum - 1) > 1e-3 {
            let m = values.max() ?? 0
            let e = values.map { exp($0 - m) }
            let s = e.reduce(0, +)
            values = e.map { $0 / s }
        }
        return values.enumerated().sorted { $0.element > $1.element }.prefix(top).map { Prediction(index: $0.offset, probability: $0.element) }
    }

    private func tensor(from image: UIImage) throws -> MLMultiArray {
        guard let cg = image.cgImage else { throw NSError(domain: "EdgecDemo", code: 3) }
        // shorter side to 256/224 of the input size, then centre crop (the ImageNet evaluation recipe)
        let short = Double(max(height, width)) * 256.0 / 224.0
        let scale = short / Double(min(cg.width, cg.height))
        let sw = max(width, Int((Double(cg.width) * scale).rounded()))
        let sh = max(height, Int((Double(cg.height) * scale).rounded()))
        var pixels = [UInt8](repeating: 0, count: width * height * 4)
        let space = CGColorSpaceCreateDeviceRGB()
        guard let ctx = CGContext(data: &pixels, width: width, height: height, bitsPerComponent: 8,
                                  bytesPerRow: width * 4, space: space,
                                  bitmapInfo: CGImageAlphaInfo.noneSkipLast.rawValue) else {
            throw NSError(domain: "EdgecDemo", code: 4)
        }
        ctx.interpolationQuality = .medium
        // drawing the scaled image offset by half the overhang crops the centre
        ctx.draw(cg, in: CGRect(x: -(sw - width) / 2, y: -(sh - height) / 2, width: sw, height: sh))
        let array = try MLMultiArray(shape: [1, 3, NSNumber(value: height), NSNumber(value: width)], dataType: .float32)
        let mean: [Float] = [0.485, 0.456, 0.406], std: [Float] = [0.229, 0.224, 0.225]
        let ptr = array.dataPointer.bindMemory(to: Float.self, capacity: 3 * height * width)
        for y in 0..<height {
            for x in 0..<width {
                let p = (y * width + x) * 4
                for c in 0..<3 {
                    ptr[c * height * width + y * width + x] = (Float(pixels[p + c]) / 255 - mean[c]) / std[c]
                }
            }
        }
        return array
    }
}
