/** The checkpoint module: our safetensors checkpoint, LoopOS's LOPOS v1 files. */
export { CHECKSUM_ALGORITHM, ChainedChecksum } from "./checksum.ts";
export {
  ADAM_M_PREFIX,
  ADAM_V_PREFIX,
  type AdamMoments,
  type CheckpointData,
  type CheckpointFormat,
  type CheckpointHeader,
  type CheckpointInput,
  type ChecksumInfo,
  type LoadedCheckpoint,
  notFoundMessage,
  readCheckpoint,
  readCheckpointHeader,
  toCheckpointData,
  writeCheckpoint,
} from "./checkpoint.ts";
export { folderGivenAsCheckpoint } from "./io.ts";
export { LOPOS_MAGIC, LOPOS_VERSION, loposMatrices, writeLopos } from "./lopos.ts";
export { DTYPE_SIZES, encodeHeader, readHeader, type SafetensorsHeader, type TensorDecl, type TensorEntry } from "./safetensors.ts";
export {
  architectureSchema,
  CHECKPOINT_FORMAT,
  CHECKPOINT_VERSION,
  type CheckpointMetadata,
  metadataSchema,
  type Precision,
  type Schedule,
  type StageRecord,
  type TokenizerIdentity,
  type TrainingPlan,
  type TrainingState,
} from "./schema.ts";
