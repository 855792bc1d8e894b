// A support app on RLaaS, from Node, through the generated TypeScript client (gen/ts,
// ts-proto over @grpc/grpc-js). It does what every integration does, in order:
//
//   1. logs an interaction its own code answered   (TelemetryService.CreateInteraction)
//   2. asks the platform for an answer             (InferenceService.Infer; the gateway
//                                                   logs that interaction itself)
//   3. sends the user's reaction to that answer     (TelemetryService.SubmitFeedback)
//
// Configuration (the same variables as the Python SDK's Client.from_env):
//   RLAAS_API_KEY   an API key with SCOPE_INGEST and SCOPE_INFER (required)
//   RLAAS_TARGET    host:port of the gRPC server (default 127.0.0.1:50051)
//   RLAAS_SKILL     the skill to answer for; it needs a promoted policy (default support_email)
//
// Run: cd sdk/node && npx tsx examples/support_flow.ts
// It prints each step, then one JSON line with the ids; it exits 1 on any error.

import { randomUUID } from "node:crypto";

import {
  type CallOptions,
  type ClientUnaryCall,
  credentials,
  Metadata,
  type ServiceError,
  status,
} from "@grpc/grpc-js";

import { InferenceServiceClient, InferRequest } from "../../../gen/ts/rlaas/inference/v1/inference";
import {
  ChatMessage_Role,
  CreateInteractionRequest,
  ExplicitFeedback_Thumb,
  SubmitFeedbackRequest,
  TelemetryServiceClient,
} from "../../../gen/ts/rlaas/telemetry/v1/telemetry";

const CALL_TIMEOUT_MS = 60_000;

type Callback<Res> = (error: ServiceError | null, response: Res) => void;
type UnaryMethod<Req, Res> = (
  request: Req,
  metadata: Metadata,
  options: Partial<CallOptions>,
  callback: Callback<Res>,
) => ClientUnaryCall;

/** Calls a generated (callback-style) unary method with the API key and a deadline. */
function call<Req, Res>(method: UnaryMethod<Req, Res>, request: Req, apiKey: string): Promise<Res> {
  const metadata = new Metadata();
  metadata.set("x-api-key", apiKey);
  const deadline = new Date(Date.now() + CALL_TIMEOUT_MS);
  return new Promise((resolve, reject) => {
    method(request, metadata, { deadline }, (error, response) =>
      error ? reject(error) : resolve(response),
    );
  });
}

function isServiceError(err: unknown): err is ServiceError {
  return typeof err === "object" && err !== null && "code" in err && "details" in err;
}

async function main(): Promise<void> {
  const apiKey = process.env.RLAAS_API_KEY ?? "";
  if (!apiKey) throw new Error("set RLAAS_API_KEY to an API key (SCOPE_INGEST + SCOPE_INFER)");
  const target = process.env.RLAAS_TARGET || "127.0.0.1:50051";
  const skill = process.env.RLAAS_SKILL || "support_email";
  const userId = "node-example-user";

  const telemetry = new TelemetryServiceClient(target, credentials.createInsecure());
  const inference = new InferenceServiceClient(target, credentials.createInsecure());
  try {
    // 1. An interaction the app answered itself, logged with its output.
    const logged = await call(
      telemetry.createInteraction.bind(telemetry),
      CreateInteractionRequest.fromPartial({
        interaction: {
          skill,
          userId,
          input: { text: "Where is my order #1234?" },
          labels: { channel: "node-example" },
        },
        output: { text: "Your order #1234 ships tomorrow." },
        requestId: randomUUID(),
      }),
      apiKey,
    );
    const loggedId = logged.interaction?.interactionId ?? "";
    console.log(`logged interaction ${loggedId} (skill ${skill})`);

    // 2. An answer from the skill's deployed policy.
    const answer = await call(
      inference.infer.bind(inference),
      InferRequest.fromPartial({
        skill,
        userId,
        messages: [{ role: ChatMessage_Role.ROLE_USER, content: "Can I change my delivery address?" }],
        labels: { channel: "node-example" },
        requestId: randomUUID(),
      }),
      apiKey,
    );
    console.log(`answer from ${answer.policyId} (interaction ${answer.interactionId}): ${answer.text}`);

    // 3. The user's reaction: thumbs up, lightly edited, then sent.
    const editedText = `${answer.text.trim()} Thanks for your patience!`;
    const feedback = await call(
      telemetry.submitFeedback.bind(telemetry),
      SubmitFeedbackRequest.fromPartial({
        interactionId: answer.interactionId,
        feedback: {
          outputId: answer.outputId,
          explicit: { thumb: ExplicitFeedback_Thumb.THUMB_UP, rating: 5 },
          implicit: { editedText, sent: true, timeToSendMs: 4200 },
        },
        requestId: randomUUID(),
      }),
      apiKey,
    );
    const feedbackId = feedback.feedback?.feedbackId ?? "";
    console.log(`feedback ${feedbackId} stored for interaction ${answer.interactionId}`);

    console.log(
      JSON.stringify({
        logged_interaction_id: loggedId,
        interaction_id: answer.interactionId,
        output_id: answer.outputId,
        policy_id: answer.policyId,
        text: answer.text,
        feedback_id: feedbackId,
        edited_text: editedText,
      }),
    );
  } finally {
    telemetry.close();
    inference.close();
  }
}

main().catch((err: unknown) => {
  if (isServiceError(err)) {
    console.error(`error: ${status[err.code]}: ${err.details}`);
  } else {
    console.error(`error: ${err instanceof Error ? err.message : String(err)}`);
  }
  process.exit(1);
});
