// Browser entry for tests/test_js_webrtc.py: OpenAI's own WebRTC transport from
// @openai/agents-realtime, bundled with esbuild (--bundle --format=esm --platform=browser)
// and loaded as a module script in headless Chromium. The test drives it through
// window.OpenAIRealtimeWebRTC.
import { OpenAIRealtimeWebRTC } from '@openai/agents-realtime';

export { OpenAIRealtimeWebRTC };
globalThis.OpenAIRealtimeWebRTC = OpenAIRealtimeWebRTC;
