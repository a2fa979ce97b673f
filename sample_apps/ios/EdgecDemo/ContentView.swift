import PhotosUI
import SwiftUI

struct ContentView: View {
    @State private var item: PhotosPickerItem?
    @State private var image: UIImage?
    @State private var results: [Prediction] = []
    @State private var message = "Pick a photo"
    // loaded once, on first use
    private static let classifier = Result { try Classifier() }
    private let labels: [String] = {
        // optional: add labels.txt (one class per line) to the target to see names instead of indices
        guard let url = Bundle.main.url(forResource: "labels", withExtension: "txt"),
              let text = try? String(contentsOf: url, encoding: .utf8) else { return [] }
        return text.components(separatedBy: .newlines)
    }()

    var body: some View {
        VStack(spacing: 16) {
            if let image {
                Image(uiImage: image).resizable().scaledToFit().frame(maxHeight: 320)
            }
            PhotosPicker("Choose image", selection: $item, matching: .images)
            Text(message).font(.footnote).foregroundStyle(.secondary)
            List(results) { r in
                HStack {
                    Text(r.index < labels.count ? labels[r.index] : "class \(r.index)")
                    Spacer()
                    Text(String(format: "%.3f", r.probability)).monospacedDigit()
                }
            }
        }
        .padding()
        .onChange(of: item) { _, newItem in
            Task {
                guard let data = try? await newItem?.loadTransferable(type: Data.self),
                      let picked = UIImage(data: data) else { return }
                image = picked
                do {
                    let start = Date()
                    results = try Self.classifier.get().classify(picked)
                    message = String(format: "%.1f ms (the first run includes loading the model)", Date().timeIntervalSince(start) * 1000)
                } catch {
                    message = error.localizedDescription
                }
            }
        }
    }
}
