import SwiftUI

@main
struct EdgecDemoApp: App {
    var body: some Scene {
        WindowGroup { ContentView() }
    }
}
