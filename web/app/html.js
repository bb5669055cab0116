// The one place the app imports Preact and htm from: every view module uses `html`
// (tagged templates, no build step, no eval) and the hooks re-exported here.
export {
  h,
  html,
  render,
  Component,
  createContext,
  useState,
  useReducer,
  useEffect,
  useLayoutEffect,
  useRef,
  useMemo,
  useCallback,
  useContext,
  useErrorBoundary,
} from '../vendor/preact-htm.js';
