/** Delayed and timer messages: the broker's persistent timing wheel. */
export { TimerService, timerDefaults, type MoveStatus, type MovedTimer, type TimerLogger, type TimerServiceOptions } from './timer-service.ts';
export { timerTopic, timerQueue, type TimerMessage } from './timer-records.ts';
export { parseMoveRequest } from './move-request.ts';
